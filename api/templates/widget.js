/*
 * Stadtretter Wissens-Chat – embeddable widget.
 *
 *   <script src="https://<chat-host>/widget.js" data-title="Fragen an die Akademie" defer></script>
 *
 * Adds a floating button that opens the chat in a panel. The API calls go to the origin this script was loaded
 * from; that server only answers pages whose origin is listed in STADTRETTER_ALLOWED_ORIGINS (CORS), so on any
 * other site the browser refuses the requests and the panel shows a German message.
 *
 * Why a Shadow DOM and not an iframe to /?embed=1: the chat is rendered by the very same module as the chat page
 * (/static/app.js) inside an open shadow root attached to one host element. Host-page CSS cannot select anything in
 * there, and the root container resets inherited properties (`all: initial`), so the page's fonts and colours
 * cannot leak in either. Compared with an iframe there is no second document to size, no postMessage plumbing,
 * focus moves naturally between page and panel, and the panel can go full-screen on phones. The API calls are
 * real cross-origin requests, so the server's origin allow-list (CORS) is what decides where the widget works.
 * No secrets are involved: the widget only uses the public ask and feedback endpoints.
 *
 * The server renders this script with its vocabulary (source types, EKT phases, labels, colours) embedded, so the
 * chat needs no extra request for it, and pages whose origin is not allowed still get the full interface.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__stadtretterWidget) return;
  window.__stadtretterWidget = true;

  var base = new URL(script.src, window.location.href).origin;
  var vocabulary = {{ vocabulary | tojson }};
  var title = script.getAttribute("data-title") || "Stadtretter Wissens-Chat";
  var chatIcon =
    '<svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true" focusable="false" fill="none" stroke="currentColor" ' +
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M4 5h16v11H9l-5 4z"/><path d="M8 9.5h8M8 12.5h5"/></svg>';
  var closeIcon =
    '<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false" fill="none" stroke="currentColor" ' +
    'stroke-width="2" stroke-linecap="round"><path d="M6 6l12 12M18 6 6 18"/></svg>';

  function escapeHTML(text) {
    return String(text).replace(/[&<>"']/g, function (ch) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[ch];
    });
  }

  function init() {
    var host = document.createElement("div");
    host.setAttribute("data-stadtretter-widget", "");
    host.style.display = "none"; // shown once the stylesheet is loaded (no flash of unstyled content)
    var shadow = host.attachShadow({ mode: "open" });
    shadow.innerHTML =
      '<link rel="stylesheet" href="' + base + '/static/styles.css">' +
      '<div class="sr-widget-root">' +
      '<div class="sr-panel" id="sr-panel" role="dialog" aria-modal="false" aria-label="' + escapeHTML(title) + '" hidden>' +
      '<div class="sr-app sr-panel-app"></div></div>' +
      '<button type="button" class="sr-launcher" aria-expanded="false" aria-controls="sr-panel">' + chatIcon +
      '<span class="sr-launcher-label">' + escapeHTML(title) + "</span></button>" +
      "</div>";
    var link = shadow.querySelector("link");
    var reveal = function () {
      host.style.display = "";
    };
    link.addEventListener("load", reveal);
    link.addEventListener("error", reveal);
    window.setTimeout(reveal, 3000);
    document.body.appendChild(host);

    var rootEl = shadow.querySelector(".sr-widget-root");
    var panel = shadow.querySelector(".sr-panel");
    var mountPoint = shadow.querySelector(".sr-panel-app");
    var launcher = shadow.querySelector(".sr-launcher");
    var loading = null;

    var closeButton = document.createElement("button");
    closeButton.type = "button";
    closeButton.className = "sr-btn sr-btn-icon sr-close";
    closeButton.innerHTML = closeIcon + '<span class="sr-visually-hidden">Chat schließen</span>';
    closeButton.title = "Chat schließen";
    closeButton.addEventListener("click", function () {
      toggle(false);
    });

    function focusInput() {
      var input = shadow.querySelector(".sr-input");
      if (input) input.focus();
    }

    function load() {
      if (loading) return loading;
      mountPoint.innerHTML = '<p class="sr-widget-loading" role="status">Wissens-Chat wird geladen …</p>';
      loading = import(base + "/static/app.js")
        .then(function (module) {
          module.mountChat(mountPoint, {
            apiBase: base,
            vocabulary: vocabulary,
            compact: true,
            title: title,
            storageKey: "stadtretter-widget:v1:" + base,
            idPrefix: "srw",
            headerExtra: closeButton,
          });
        })
        .catch(function () {
          loading = null;
          mountPoint.innerHTML =
            '<div class="sr-widget-failed" role="alert"><p>Der Wissens-Chat konnte nicht geladen werden. ' +
            "Bitte versuchen Sie es später erneut.</p></div>";
          mountPoint.firstChild.prepend(closeButton);
        });
      return loading;
    }

    function toggle(open) {
      panel.hidden = !open;
      launcher.setAttribute("aria-expanded", String(open));
      rootEl.classList.toggle("sr-open", open);
      if (open) {
        load().then(focusInput);
      } else {
        launcher.focus();
      }
    }

    launcher.addEventListener("click", function () {
      toggle(panel.hidden);
    });
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        event.stopPropagation();
        toggle(false);
      }
    });
  }

  if (document.body) init();
  else document.addEventListener("DOMContentLoaded", init);
})();
