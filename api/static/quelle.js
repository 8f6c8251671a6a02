// Source view: bring the cited passage (?chunk= or ?t=) into view and move focus there for keyboard users.
const target = document.querySelector("[data-target]");
if (target) {
  target.scrollIntoView({ block: "center" });
  target.focus({ preventScroll: true });
}
