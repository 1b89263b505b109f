// Keep the CSRF header fresh for htmx requests made after a login in another tab.
document.addEventListener("htmx:configRequest", (event) => {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) event.detail.headers["X-CSRFToken"] = decodeURIComponent(match[1]);
});

// The "live updates" indicator of any page with a socket (#live): its
// data-closed-text says what the page does when the socket is down.
const showLive = (open) => {
  const el = document.getElementById("live");
  if (!el) return;
  el.classList.toggle("is-open", open);
  el.classList.toggle("is-closed", !open);
  el.querySelector(".live-text").textContent = open
    ? "Live updates on"
    : el.dataset.closedText || "Live updates off";
};
document.addEventListener("htmx:wsOpen", () => showLive(true));
document.addEventListener("htmx:wsClose", () => showLive(false));
