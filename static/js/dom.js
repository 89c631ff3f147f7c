// The pages' DOM helpers. el() builds elements: data always goes in as text (`text`, attributes, string children),
// never as HTML. classes() is the emotion class list the server renders once in base.html (#emotion-classes).
(function () {
  "use strict";

  // el("span", {class: "bar", text: name, style: {width: "40%"}, dataset: {id: 3}}, [child, "text", ...]).
  // null, undefined and false attributes or children are left out; true sets an empty attribute.
  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key === "style") Object.assign(node.style, value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of [].concat(children)) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  // JSON that a template rendered with {{ value|json_script:"id" }}.
  function json(id) {
    const node = document.getElementById(id);
    if (!node) throw new Error(`#${id} is missing: the template must render it with json_script`);
    return JSON.parse(node.textContent);
  }

  let classList = null;
  function classes() {
    if (!classList) classList = Object.freeze(json("emotion-classes"));
    return classList;
  }

  window.ferplatform = {...(window.ferplatform || {}), el, json, classes};
})();
