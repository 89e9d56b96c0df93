// Render every [data-spec] element with the Vega-Lite spec held in the JSON script it names.
// Loaded as a module after /static/vega.js (modules run in document order), which defines window.vegaEmbed.
for (const el of document.querySelectorAll("[data-spec]")) {
  const spec = JSON.parse(document.getElementById(el.dataset.spec).textContent);
  window.vegaEmbed(el, spec, { renderer: "svg", actions: false })
    .then(() => { el.dataset.rendered = "true"; })
    .catch((err) => { el.dataset.rendered = "error"; el.textContent = "chart failed: " + err; });
}
