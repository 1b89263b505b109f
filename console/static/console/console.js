// Notebook Workers console: refresh pausing, row collapse, live indicator.
(() => {
  const openDetail = () => document.querySelector("tr.worker-detail[data-open]");

  window.NotebookConsole = {
    // Periodic refresh waits while someone reads a row or the tab is hidden.
    canRefresh: () => !document.hidden && !openDetail(),
    // Checkboxes and selects apply at once; text fields on Apply or Enter.
    isToggle: (event) => ["checkbox", "select-one"].includes(event.target.type),
  };

  // Filter errors answer 400 with the form and its messages: swap them in.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "(400|409)", swap: true, error: false },
    { code: "[45]..", swap: false, error: true },
  ];

  // Shareable URLs: leave empty filter fields out of the query string.
  document.addEventListener("htmx:configRequest", (event) => {
    const data = event.detail.formData;
    if (event.detail.elt.id !== "filters" || !data) return;
    for (const [key, value] of [...data.entries()]) if (value === "") data.delete(key);
  });

  const collapse = (id) => {
    const row = document.getElementById(`worker-${id}-detail`);
    if (row) row.outerHTML = `<tr id="worker-${id}-detail" class="worker-detail" hidden></tr>`;
    const link = document.querySelector(`a.expand[data-worker="${id}"]`);
    if (link) link.setAttribute("aria-expanded", "false");
  };

  // Capture phase: a click on an open row's link closes it before htmx loads it again.
  document.addEventListener("click", (event) => {
    const close = event.target.closest("[data-collapse]");
    const link = event.target.closest("a.expand");
    const id = close?.dataset.collapse || link?.dataset.worker;
    if (!id || (link && !document.querySelector(`#worker-${id}-detail[data-open]`))) return;
    event.preventDefault();
    event.stopPropagation();
    collapse(id);
  }, true);

  document.addEventListener("htmx:afterSwap", (event) => {
    const link = event.detail.elt;
    if (link?.matches?.("a.expand")) link.setAttribute("aria-expanded", "true");
  });

  // A live row replaced by the socket keeps showing that its panel is open.
  document.addEventListener("htmx:wsAfterMessage", () => {
    document.querySelectorAll("tr.worker-detail[data-open]").forEach((row) => {
      const id = row.id.slice("worker-".length, -"-detail".length);
      document.querySelector(`a.expand[data-worker="${id}"]`)?.setAttribute("aria-expanded", "true");
    });
  });

  // Coming back to the tab refreshes at once instead of waiting for the timer.
  document.addEventListener("visibilitychange", () => {
    const results = document.getElementById("results");
    if (!document.hidden && results && !openDetail()) htmx.trigger(results, "console:refresh");
  });

  const live = (state, text) => {
    const el = document.getElementById("live");
    if (!el) return;
    el.classList.toggle("is-open", state === "open");
    el.classList.toggle("is-closed", state === "closed");
    el.querySelector(".live-text").textContent = text;
  };
  document.addEventListener("htmx:wsOpen", () => live("open", "Live updates on"));
  document.addEventListener("htmx:wsClose", () => live("closed", "Live updates off; refreshing every few seconds"));
})();
