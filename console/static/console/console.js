// Notebook Workers console: refresh pausing, row collapse, live indicator.
(() => {
  const openDetail = () => document.querySelector("tr.worker-detail[data-open]");

  // No hx-trigger filters here: htmx evaluates them with the Function
  // constructor, which the Content-Security-Policy forbids. Plain listeners fire custom events.
  // Periodic refresh waits while someone reads a row or the tab is hidden.
  const canRefresh = () => !document.hidden && !openDetail();

  // Checkboxes and selects apply at once; text fields on Apply or Enter.
  document.addEventListener("change", (event) => {
    const form = event.target.form;
    if (form?.id !== "filters") return;
    if (["checkbox", "select-one"].includes(event.target.type)) htmx.trigger(form, "filters:toggle");
  });

  // One timer, restarted whenever the results are swapped in (so a manual
  // refresh postpones the next automatic one).
  let refreshTimer;
  const scheduleRefresh = () => {
    clearTimeout(refreshTimer);
    const seconds = Number(document.getElementById("results")?.dataset.refreshSeconds);
    if (!seconds) return;
    refreshTimer = setTimeout(() => {
      const results = document.getElementById("results");
      if (results && canRefresh()) htmx.trigger(results, "console:refresh");
      scheduleRefresh();
    }, seconds * 1000);
  };
  document.addEventListener("htmx:afterSettle", (event) => {
    if (["results", "console-body"].includes(event.detail.target?.id)) scheduleRefresh();
  });
  scheduleRefresh();

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

  // A row's link opens its panel in place: a disclosure only where this
  // script runs, so it is marked here (console/rows.py leaves it plain).
  htmx.onLoad((content) => {
    const links = content.querySelectorAll?.("a.expand:not([aria-expanded])") ?? [];
    links.forEach((link) => link.setAttribute("aria-expanded", "false"));
  });

  const collapse = (id) => {
    document.getElementById(`worker-${id}-detail`)?.remove();
    const link = document.querySelector(`#worker-${id} a.expand`);
    if (link) link.setAttribute("aria-expanded", "false");
  };

  // Capture phase: a click on an open row's link closes it before htmx loads it again.
  document.addEventListener("click", (event) => {
    const close = event.target.closest("[data-collapse]");
    const link = event.target.closest("a.expand");
    const id = close?.dataset.collapse || link?.closest("tr")?.id.slice("worker-".length);
    if (!id || (link && !document.querySelector(`#worker-${id}-detail[data-open]`))) return;
    event.preventDefault();
    event.stopPropagation();
    collapse(id);
  }, true);

  document.addEventListener("htmx:afterSwap", (event) => {
    // detail.elt is the swap's target (the row); the link asked for it.
    const link = event.detail.requestConfig?.elt;
    if (link?.matches?.("a.expand")) link.setAttribute("aria-expanded", "true");
  });

  // The rows' buttons submit the one #wa form (outside the form, so htmx
  // does not see which was clicked): the clicked button gives the URL and
  // whether to ask first (hx-confirm would ask the form's question).
  document.addEventListener("htmx:configRequest", (event) => {
    const action = event.detail.triggeringEvent?.submitter?.getAttribute("formaction");
    if (event.detail.elt.id === "wa" && action) event.detail.path = action;
  });
  document.addEventListener("htmx:confirm", (event) => {
    const question = event.detail.triggeringEvent?.submitter?.dataset.confirm;
    if (event.detail.elt.id !== "wa" || !question) return;
    event.preventDefault();
    if (window.confirm(question)) event.detail.issueRequest(true);
  });

  // A live row replaced by the socket keeps showing that its panel is open.
  document.addEventListener("htmx:wsAfterMessage", () => {
    document.querySelectorAll("tr.worker-detail[data-open]").forEach((row) => {
      const id = row.id.slice("worker-".length, -"-detail".length);
      document.querySelector(`#worker-${id} a.expand`)?.setAttribute("aria-expanded", "true");
    });
  });

  // Coming back to the tab refreshes at once instead of waiting for the timer.
  document.addEventListener("visibilitychange", () => {
    const results = document.getElementById("results");
    if (!document.hidden && results && !openDetail()) htmx.trigger(results, "console:refresh");
  });
})();
