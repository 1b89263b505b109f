// Workspace pages: refusals swapped in, plan-window countdowns, bulk
// selection count and the live-updates indicator. Pages work without it.
(() => {
  // A refused action answers 409 with the row and the reason: show it.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "(400|409)", swap: true, error: false },
    { code: "[45]..", swap: false, error: true },
  ];

  const pad = (n) => String(n).padStart(2, "0");
  const hms = (ms) => {
    const s = Math.max(Math.floor(ms / 1000), 0);
    return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  };

  // "Plan window closes in HH:MM:SS", counted down from the server's deadline.
  let reloaded = false;
  const tick = () => {
    document.querySelectorAll(".countdown[data-deadline]").forEach((el) => {
      const left = Date.parse(el.dataset.deadline) - Date.now();
      el.textContent = hms(left);
      // Closed: the page then offers "Switch to Default Queue".
      if (left <= 0 && !reloaded) {
        reloaded = true;
        setTimeout(() => window.location.reload(), 1500);
      }
    });
  };
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);

  const countSelected = () => {
    const count = document.getElementById("bulk-count");
    if (!count) return;
    const n = document.querySelectorAll("input.bulk-pick:checked").length;
    count.textContent = `${n} selected`;
  };
  document.addEventListener("change", (event) => {
    if (event.target.matches?.("input.bulk-pick")) countSelected();
  });
  document.addEventListener("htmx:afterSwap", countSelected);
})();
