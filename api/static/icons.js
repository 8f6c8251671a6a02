// Inline SVG icons (no icon font, no CDN). All are decorative (aria-hidden); the text next to them carries meaning.

const svg = (body, size = 18) =>
  `<svg class="sr-icon" viewBox="0 0 24 24" width="${size}" height="${size}" aria-hidden="true" focusable="false" ` +
  `fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${body}</svg>`;

export const icons = {
  logo:
    `<svg class="sr-logo" viewBox="0 0 40 40" width="40" height="40" aria-hidden="true" focusable="false">` +
    `<rect width="40" height="40" rx="10" fill="currentColor"/>` +
    `<path d="M9 29V17l6-5 6 5v12M21 29V13l5-4 5 4v16M7 29h26" fill="none" stroke="#fff" stroke-width="2.4" ` +
    `stroke-linecap="round" stroke-linejoin="round"/><circle cx="15" cy="22" r="1.6" fill="#fff"/>` +
    `<circle cx="26" cy="18" r="1.6" fill="#fff"/></svg>`,
  article: svg('<path d="M14 3H6a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9z"/><path d="M14 3v6h6"/><path d="M8 13h8M8 17h5"/>'),
  webtalk: svg('<rect x="3" y="5" width="13" height="14" rx="2"/><path d="m16 10 5-3v10l-5-3z"/>'),
  course: svg('<path d="M2 9.5 12 5l10 4.5-10 4.5z"/><path d="M6 11.5V16c0 1.5 2.7 3 6 3s6-1.5 6-3v-4.5"/>'),
  all: svg('<rect x="3" y="3" width="7" height="7" rx="1.5"/><rect x="14" y="3" width="7" height="7" rx="1.5"/><rect x="3" y="14" width="7" height="7" rx="1.5"/><rect x="14" y="14" width="7" height="7" rx="1.5"/>', 16),
  send: svg('<path d="M4 12 20 4l-6 16-3-7z"/><path d="m11 13 9-9"/>', 20),
  plus: svg('<path d="M12 5v14M5 12h14"/>'),
  copy: svg('<rect x="8" y="8" width="12" height="12" rx="2"/><path d="M16 8V6a2 2 0 0 0-2-2H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h2"/>'),
  check: svg('<path d="m5 12 5 5 9-10"/>'),
  thumbUp: svg('<path d="M7 11v9H4v-9z"/><path d="M7 11l4-7c1.7 0 2.6 1.2 2.2 2.8L12.5 10H19a2 2 0 0 1 2 2.3l-1.2 6A2 2 0 0 1 17.8 20H7"/>'),
  thumbDown: svg('<path d="M7 13V4H4v9z"/><path d="M7 13l4 7c1.7 0 2.6-1.2 2.2-2.8L12.5 14H19a2 2 0 0 0 2-2.3l-1.2-6A2 2 0 0 0 17.8 4H7"/>'),
  external: svg('<path d="M14 4h6v6"/><path d="M20 4 11 13"/><path d="M18 14v5a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1h5"/>', 16),
  page: svg('<path d="M14 3H6a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9z"/><path d="M14 3v6h6"/>', 16),
  clock: svg('<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>', 16),
  textView: svg('<path d="M4 6h16M4 10h16M4 14h10M4 18h7"/>', 16),
  alert: svg('<path d="M12 3 2 20h20z"/><path d="M12 10v4M12 17.5v.01"/>', 20),
  info: svg('<circle cx="12" cy="12" r="9"/><path d="M12 11v6M12 7.5v.01"/>', 20),
  retry: svg('<path d="M4 12a8 8 0 1 0 2.3-5.6"/><path d="M4 4v4h4"/>', 16),
  chat: svg('<path d="M4 5h16v11H9l-5 4z"/><path d="M8 9.5h8M8 12.5h5"/>', 26),
  close: svg('<path d="M6 6l12 12M18 6 6 18"/>', 20),
  filter: svg('<path d="M4 5h16l-6 7v6l-4 2v-8z"/>', 16),
};

export const typeIcon = (type) => icons[type] || icons.article;
