// The product's vocabulary (core/vocabulary.py), sent by the server: source types and EKT phases with their German
// labels and colours. The page embeds it as JSON (<script id="sr-vocabulary">), the widget script carries it.

/** The vocabulary embedded in the served page. */
export function embeddedVocabulary(doc = document) {
  return JSON.parse(doc.getElementById("sr-vocabulary").textContent);
}

export class Vocabulary {
  constructor(data) {
    this.crossPhase = data.cross_phase;
    this.types = data.types;
    this.phases = data.phases;
    this.typeLabels = Object.fromEntries(data.types.map((t) => [t.key, t.label]));
    this.phaseLabels = Object.fromEntries(data.phases.map((p) => [p.key, p.label]));
  }

  typeLabel(type) {
    return this.typeLabels[type] || type;
  }

  /** A phase's label; anything that is not one of the phases counts as cross-phase. */
  phaseLabel(phase) {
    return this.phaseLabels[phase] || (phase ? this.phaseLabels[this.crossPhase] : "");
  }

  /** The phase's suffix in CSS names (sr-phase-E, --sr-E): its key, or X for cross-phase. */
  phaseKey(phase) {
    return phase && phase !== this.crossPhase && phase in this.phaseLabels ? phase : "X";
  }

  /** The phases a question can be filtered by (cross-phase is not a filter). */
  filterPhases() {
    return this.phases.filter((p) => p.key !== this.crossPhase);
  }

  /** Set the phase colours as the stylesheet's custom properties (--sr-E, --sr-E-bg, --sr-E-text, …). */
  applyColours(element) {
    for (const phase of this.phases) {
      const key = this.phaseKey(phase.key);
      element.style.setProperty(`--sr-${key}`, phase.colours.accent);
      element.style.setProperty(`--sr-${key}-bg`, phase.colours.background);
      element.style.setProperty(`--sr-${key}-text`, phase.colours.text);
    }
  }
}
