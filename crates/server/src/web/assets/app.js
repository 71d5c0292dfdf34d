// Herald's web UI: progressive enhancement only; every page works without this file.
"use strict";

// Copy buttons: <button data-copy="ELEMENT-ID">.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = source.value !== undefined && source.tagName !== "PRE" && source.tagName !== "CODE" ? source.value : source.textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
});

// Confirmations: <form data-confirm="Question?">.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// Live lists: <tbody data-poll="URL"> is refreshed from URL (rows only) every 5 s.
for (const body of document.querySelectorAll("[data-poll]")) {
  const refresh = async () => {
    if (document.hidden) return;
    try {
      const response = await fetch(body.dataset.poll, { credentials: "same-origin" });
      if (!response.ok || response.redirected) return;
      const html = await response.text();
      if (html !== body.innerHTML) body.innerHTML = html;
    } catch {
      // Offline for a moment: the next tick tries again.
    }
  };
  setInterval(refresh, 5000);
}

// Selects marked data-refresh (the editor's trigger type) re-show the form when changed.
for (const select of document.querySelectorAll("select[data-refresh]")) {
  select.addEventListener("change", () => {
    const refresh = document.getElementById("refresh");
    if (refresh && select.form) select.form.requestSubmit(refresh);
  });
}
