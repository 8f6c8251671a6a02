"""EKT phase tagging: every chunk, source and answer gets a phase – E (Evaluation), K (Konzeption),
T (Transformation) or "übergreifend" – with scores in [0, 1] and a one-line German explanation.

Four signals, each a distribution over (E, K, T, übergreifend), pooled log-linearly with equal weights (the
normalised geometric mean, so that agreeing signals do not multiply into overconfident scores):

1. Prototypes: cosine similarity of the embedding to the example passages of each phase in
   prompts/phases/{E,K,T,uebergreifend}.md (written for this purpose, not taken from the corpus); questions are
   also compared with the "Typische Fragen" there. Mean of the best three per phase, softmax.
2. Lexicon: German cue terms per phase (prompts/phases/lexicon.yml) matched on Snowball stems
   (retriever.text.analyze), single stems also as the head of a compound. It names the cue terms in the
   explanation and is what makes a decision explainable.
3. Classifier: multinomial logistic regression on the embedding, trained by bench/train_phase_classifier.py on
   the hand-labelled passages (eval/phase) plus the prototypes; weights in retriever/calibration/
   phase_classifier.npz. The passages are embedded as ingestion embeds a chunk (title › section above the text),
   so the classifier is trained on the vectors it later tags. Used only with the embedding model it was trained
   for; without it the tagger runs on the other three signals (measured in bench/phase_eval.py).
4. Terms: multinomial logistic regression on TF-IDF weighted stems, trained on the same passages and prototype
   passages (a lexicon learned from the labelled data; same file). It needs no embedding.

An editor's front-matter tag (doc.ekt) is a prior: it adds log-odds to the tagged phases, it never sets them.
At ingestion the tagger reuses the vectors the pipeline passes in and never embeds a chunk itself. An answer's
phase mixes the question's estimate (30 %) with the phase scores of the cited chunks (70 %, by rank and score).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import re
import unicodedata
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from core.vocabulary import CROSS_PHASE, PHASE_DATIVE, PHASE_KEYS, PHASE_LABELS, PHASES
from retriever.models import Citation, PhaseTag
from retriever.text import analyze, fold

logger = logging.getLogger("stadtretter.phases")

PROMPTS_DIR = files("prompts") / "phases"
LEXICON_FILE = PROMPTS_DIR / "lexicon.yml"
CLASSIFIER_FILE = files("retriever") / "calibration" / "phase_classifier.npz"

PHASE_FILES = {"E": "E.md", "K": "K.md", "T": "T.md", CROSS_PHASE: "uebergreifend.md"}
_CROSS = PHASE_KEYS.index(CROSS_PHASE)
_RAW_TOKEN = re.compile(r"[0-9A-Za-zÀ-ÖØ-öø-ÿß]+(?:[-–][0-9A-Za-zÀ-ÖØ-öø-ÿß]+)*")

Cues = dict[str, list[tuple[str, float]]]  # phase -> [(cue term as it stands in the text, weight)], best first


# --------------------------------------------------------------------------------------------------------------
# Phase definitions and prototypes (prompts/phases/*.md)


@dataclass
class PhaseDefinition:
    phase: str
    label: str
    summary: str  # one German line
    cue: str  # what texts of this phase are about; used when no cue term is found
    definition: str  # German paragraph
    examples: list[str]  # prototype passages
    questions: list[str]  # prototype questions


_FRONT_MATTER = re.compile(r"^---\s*\n(.*?)\n---\s*\n", re.S)


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def parse_definition(path: Traversable) -> PhaseDefinition:
    raw = path.read_text(encoding="utf-8")
    match = _FRONT_MATTER.match(raw)
    front = (yaml.safe_load(match.group(1)) or {}) if match else {}
    sections: dict[str, str] = {}
    current = "definition"
    for line in (raw[match.end():] if match else raw).splitlines():
        if line.startswith("## "):
            current = line[3:].strip().lower()
        elif not line.startswith("# "):
            sections[current] = sections.get(current, "") + line + "\n"
    return PhaseDefinition(
        phase=str(front.get("phase", path.name.removesuffix(".md"))),
        label=str(front.get("label", "")),
        summary=str(front.get("summary", "")),
        cue=str(front.get("cue", "")),
        definition=" ".join(sections.get("definition", "").split()),
        examples=_paragraphs(sections.get("beispiele", "")),
        questions=_paragraphs(sections.get("typische fragen", "")),
    )


def load_definitions(directory: Traversable = PROMPTS_DIR) -> dict[str, PhaseDefinition]:
    return {phase: parse_definition(directory / name) for phase, name in PHASE_FILES.items()}


def prototype_texts(definitions: dict[str, PhaseDefinition]) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Prototype passages and questions with their label indices, in PHASE_KEYS order."""
    passages = [(text, i) for i, p in enumerate(PHASE_KEYS) for text in definitions[p].examples]
    questions = [(text, i) for i, p in enumerate(PHASE_KEYS) for text in definitions[p].questions]
    return (
        [t for t, _ in passages], np.array([i for _, i in passages], dtype=np.int64),
        [t for t, _ in questions], np.array([i for _, i in questions], dtype=np.int64),
    )


def prompts_hash(directory: Traversable = PROMPTS_DIR) -> str:
    digest = hashlib.sha256()
    for name in sorted(PHASE_FILES.values()):
        digest.update((directory / name).read_bytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------------------------------------------
# Lexicon


@dataclass
class Term:
    phase: str
    surface: str
    stems: tuple[str, ...]
    weight: float
    prefix: bool = False


class Lexicon:
    """Cue terms per phase on stems. A single stem of 5+ letters also matches as the head of a compound
    ("Befragung" in "Passantenbefragung"); a term written with a trailing "*" matches as a prefix; multi-word terms
    match consecutive stems. Each text token counts once per phase, with its best-matching term."""

    def __init__(self, terms: list[Term]) -> None:
        self.terms = terms
        self.exact: dict[str, list[Term]] = {}
        self.heads: list[Term] = []
        self.prefixes: list[Term] = []
        self.multi: list[Term] = []
        for term in terms:
            if len(term.stems) > 1:
                self.multi.append(term)
            elif term.prefix:
                self.prefixes.append(term)
            else:
                self.exact.setdefault(term.stems[0], []).append(term)
                if len(term.stems[0]) >= 5:
                    self.heads.append(term)
        self._memo: dict[str, dict[str, Term]] = {}

    @classmethod
    def load(cls, path: Traversable = LEXICON_FILE) -> "Lexicon":
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        terms: list[Term] = []
        for key, entries in data.items():
            phase = CROSS_PHASE if fold(str(key)) in ("ubergreifend", "x") else str(key).upper()
            if phase not in PHASE_KEYS:
                raise ValueError(f"{path}: unbekannte Phase „{key}“ (erlaubt: E, K, T, übergreifend)")
            for surface, weight in (entries or {}).items():
                surface = str(surface)
                prefix = surface.endswith("*")
                word = surface.rstrip("*")
                stems = (fold(word),) if prefix else tuple(analyze(word))
                if stems:
                    terms.append(Term(phase, word, stems, float(weight), prefix))
        return cls(terms)

    def _token_terms(self, stem: str) -> dict[str, Term]:
        """Best-matching term per phase for one stem (memoised: the vocabulary of a corpus is small)."""
        found = self._memo.get(stem)
        if found is None:
            matches = list(self.exact.get(stem, ()))
            if not matches:
                matches = [t for t in self.heads if len(stem) > len(t.stems[0]) and stem.endswith(t.stems[0])]
            matches += [t for t in self.prefixes if stem.startswith(t.stems[0])]
            found = {}
            for term in matches:
                if term.phase not in found or term.weight > found[term.phase].weight:
                    found[term.phase] = term
            if len(self._memo) < 200_000:
                self._memo[stem] = found
        return found

    def match(self, text: str) -> tuple[np.ndarray, Cues]:
        """Cue mass per phase (PHASE_KEYS order) and the cue terms found, as they stand in the text."""
        stems: list[str] = []
        surfaces: list[str] = []
        for raw in _RAW_TOKEN.findall(unicodedata.normalize("NFC", text)):
            for part in re.split(r"[-–]", raw):
                for stem in _analyze_word(part):
                    stems.append(stem)
                    surfaces.append(part)
        mass = np.zeros(len(PHASE_KEYS))
        cues: dict[str, dict[str, float]] = {}
        for stem, surface in zip(stems, surfaces):
            for phase, term in self._token_terms(stem).items():
                mass[PHASE_KEYS.index(phase)] += term.weight
                # a verb or adjective of the lexicon stays lower case even at the start of a sentence
                shown = surface.lower() if term.surface[:1].islower() else surface
                seen = cues.setdefault(phase, {})
                seen[shown] = seen.get(shown, 0.0) + term.weight
        for term in self.multi:
            n = len(term.stems)
            for start in range(len(stems) - n + 1):
                if tuple(stems[start : start + n]) == term.stems:
                    mass[PHASE_KEYS.index(term.phase)] += term.weight
                    seen = cues.setdefault(term.phase, {})
                    seen[term.surface] = seen.get(term.surface, 0.0) + term.weight
        return mass, {p: sorted(found.items(), key=lambda kv: -kv[1]) for p, found in cues.items()}


_WORD_MEMO: dict[str, list[str]] = {}


def _analyze_word(word: str) -> list[str]:
    stems = _WORD_MEMO.get(word)
    if stems is None:
        stems = analyze(word)
        if len(_WORD_MEMO) < 200_000:
            _WORD_MEMO[word] = stems
    return stems


# --------------------------------------------------------------------------------------------------------------
# Classifier


@dataclass
class LinearModel:
    """Multinomial logistic regression on centred, scaled embeddings."""

    weights: np.ndarray  # (labels, dim)
    bias: np.ndarray  # (labels,)
    mean: np.ndarray  # (dim,)
    scale: float
    model_name: str = ""

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        x = (np.asarray(vectors, dtype=np.float64) - self.mean) * self.scale
        return x @ self.weights.T + self.bias


@dataclass
class TermModel:
    """Multinomial logistic regression on TF-IDF weighted stems (retriever.text.analyze, log term frequency, rows
    of unit length): a lexicon learned from the labelled passages, beside the hand-written one. It needs no
    embedding, so it works with any embedding model."""

    vocabulary: dict[str, int]
    idf: np.ndarray  # (terms,)
    model: LinearModel  # on term_features rows

    def features(self, texts: Sequence[str]) -> np.ndarray:
        return term_features(texts, self.vocabulary, self.idf)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.logits(self.features(texts))


def train_terms(texts: Sequence[str], y: np.ndarray, min_df: int = 2, l2: float = 1.0) -> TermModel:
    """Vocabulary: stems in at least `min_df` training texts (rarer ones are names and numbers)."""
    stems = [set(analyze(text)) for text in texts]
    df: dict[str, int] = {}
    for found in stems:
        for stem in found:
            df[stem] = df.get(stem, 0) + 1
    vocabulary = {stem: i for i, stem in enumerate(sorted(s for s, n in df.items() if n >= min_df))}
    idf = np.array([math.log(len(texts) / df[stem]) for stem in vocabulary])
    return TermModel(vocabulary, idf, train_linear(term_features(texts, vocabulary, idf), y, l2=l2))


def term_features(texts: Sequence[str], vocabulary: dict[str, int], idf: np.ndarray) -> np.ndarray:
    rows = np.zeros((len(texts), len(vocabulary)))
    for row, text in zip(rows, texts):
        counts: dict[int, int] = {}
        for stem in analyze(text):
            column = vocabulary.get(stem)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        for column, count in counts.items():
            row[column] = math.log1p(count) * idf[column]
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def train_linear(x: np.ndarray, y: np.ndarray, l2: float = 0.3, iterations: int = 400) -> LinearModel:
    """Multinomial logistic regression by full-batch gradient descent (Nesterov momentum), class-balanced.
    `y` holds label indices or soft targets (rows summing to 1, e.g. 0.65 primary phase, 0.35 secondary).
    The fixed number of iterations acts as early stopping; `l2` is a light ridge penalty. ~0.2 s for 400 rows."""
    n_labels = len(PHASE_KEYS)
    x = np.asarray(x, dtype=np.float64)
    targets = np.eye(n_labels)[y] if np.asarray(y).ndim == 1 else np.asarray(y, dtype=np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    scale = 1.0 / (float(np.sqrt((centred**2).sum(axis=1).mean())) + 1e-9)
    xs = centred * scale
    n, d = xs.shape
    counts = targets.sum(axis=0)
    class_weight = np.where(counts > 0, n / (n_labels * np.maximum(counts, 1e-9)), 0.0)
    sample_weight = (targets * class_weight).sum(axis=1)
    sample_weight = sample_weight / sample_weight.sum()
    weights, bias = np.zeros((n_labels, d)), np.zeros(n_labels)
    velocity_w, velocity_b = weights.copy(), bias.copy()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):  # tiny products: BLAS threads only contend (20x slower)
        for _ in range(iterations):
            look_w, look_b = weights + 0.9 * velocity_w, bias + 0.9 * velocity_b
            grad = (softmax(xs @ look_w.T + look_b) - targets) * sample_weight[:, None]
            velocity_w = 0.9 * velocity_w - 0.5 * (grad.T @ xs + l2 * look_w / n)
            velocity_b = 0.9 * velocity_b - 0.5 * grad.sum(axis=0)
            weights, bias = weights + velocity_w, bias + velocity_b
    return LinearModel(weights, bias, mean, scale)


@dataclass
class Calibration:
    """What bench/train_phase_classifier.py stores: the embedding classifier, the term model, the prototype vectors
    of the same embedding model (so loading needs no embedding) and metadata."""

    classifier: LinearModel | None = None
    terms: TermModel | None = None
    prototypes: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def save_classifier(path: Path, calibration: Calibration) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {"meta": np.array(json.dumps(calibration.meta, ensure_ascii=False))}
    if calibration.classifier is not None:
        arrays.update(_linear_arrays("", calibration.classifier))
    if calibration.terms is not None:
        arrays.update(_linear_arrays("term_", calibration.terms.model))
        arrays["term_vocabulary"] = np.array(list(calibration.terms.vocabulary))
        arrays["term_idf"] = calibration.terms.idf.astype(np.float32)
    arrays.update({name: np.asarray(v, dtype=np.float32) for name, v in calibration.prototypes.items()})
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def load_classifier(path: Traversable = CLASSIFIER_FILE) -> Calibration:
    if not path.is_file():
        return Calibration()
    try:
        with path.open("rb") as file, np.load(file, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            classifier = _linear_model("", data, str(meta.get("model_name", ""))) if "weights" in data.files else None
            terms = None
            if "term_vocabulary" in data.files:
                vocabulary = {str(stem): i for i, stem in enumerate(data["term_vocabulary"])}
                terms = TermModel(vocabulary, data["term_idf"].astype(np.float64), _linear_model("term_", data, ""))
            prototypes = {name: data[name] for name in ("proto_passages", "proto_questions") if name in data.files}
    except (OSError, KeyError, ValueError) as exc:  # a broken file must not stop ingestion
        logger.warning("Phasen-Klassifikator nicht lesbar (%s): ohne Klassifikator weiter", exc)
        return Calibration()
    return Calibration(classifier, terms, prototypes, meta)


def _linear_arrays(prefix: str, model: LinearModel) -> dict[str, Any]:
    return {
        f"{prefix}weights": model.weights.astype(np.float32), f"{prefix}bias": model.bias.astype(np.float32),
        f"{prefix}mean": model.mean.astype(np.float32), f"{prefix}scale": np.float64(model.scale),
    }


def _linear_model(prefix: str, data: Any, model_name: str) -> LinearModel:
    return LinearModel(
        data[f"{prefix}weights"].astype(np.float64), data[f"{prefix}bias"].astype(np.float64),
        data[f"{prefix}mean"].astype(np.float64), float(data[f"{prefix}scale"]), model_name,
    )


# --------------------------------------------------------------------------------------------------------------
# The tagger


@dataclass
class TaggerConfig:
    """Pooling parameters. Equal method weights; the rest set once and checked in bench/phase_eval.py."""

    proto_weight: float = 1 / 4  # equal weights summing to 1: the geometric mean of the four distributions
    lexicon_weight: float = 1 / 4
    classifier_weight: float = 1 / 4
    terms_weight: float = 1 / 4
    proto_temperature: float = 0.02  # softmax temperature over the per-phase top-k mean cosine
    proto_top_k: int = 3
    lexicon_strength: float = 1.2  # logit per log(1 + cue mass)
    lexicon_cross_bias: float = 0.6  # "übergreifend" logit of the lexicon (wins when a text has no cue term)
    prior_strength: float = math.log(2.0)  # log-odds added to each phase the editor tagged (doubles its odds)
    doc_smoothing: float = 0.0  # share of the document's distribution in each chunk's (measured: no gain)
    dominance: float = 0.0  # a phase below this probability is not primary ("übergreifend" then)
    question_weight: float = 0.3  # share of the question estimate in an answer's phase (rest: cited sources)


METHODS: tuple[str, ...] = ("proto", "lexicon", "classifier", "terms")
_PROTOTYPE_CACHE: "weakref.WeakKeyDictionary[Any, dict[str, tuple[np.ndarray, np.ndarray]]]" = weakref.WeakKeyDictionary()


class PhaseTagger:
    """Ingestion enricher (`run`) and phase estimator for texts, questions and answers."""

    def __init__(
        self,
        embeddings: Any,
        definitions: dict[str, PhaseDefinition] | None = None,
        lexicon: Lexicon | None = None,
        classifier: LinearModel | None = None,
        config: TaggerConfig | None = None,
        prototype_vectors: dict[str, np.ndarray] | None = None,
        terms: TermModel | None = None,
    ) -> None:
        self.embeddings = embeddings
        self.definitions = definitions or load_definitions()
        self.lexicon = lexicon or Lexicon.load()
        self.config = config or TaggerConfig()
        self.classifier = classifier if _fits(classifier, embeddings) else None
        self.terms = terms
        self._given = prototype_vectors or {}
        self._prototypes: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.methods: tuple[str, ...] = METHODS  # signals in use (bench/phase_eval.py ablates them)

    @classmethod
    def load(cls, embeddings: Any, config: TaggerConfig | None = None) -> "PhaseTagger":
        """The tagger as configured in the repository: prompts/phases and retriever/calibration."""
        calibration = load_classifier()
        meta = calibration.meta
        same_model = meta.get("model_name") == getattr(embeddings, "model_name", None)
        given = calibration.prototypes if same_model and meta.get("prompts_hash") == prompts_hash() else {}
        if calibration.classifier is not None and same_model and meta.get("prompts_hash") != prompts_hash():
            logger.info("prompts/phases geändert: bench/train_phase_classifier.py neu ausführen")
        return cls(
            embeddings, load_definitions(), Lexicon.load(), calibration.classifier, config, given, calibration.terms
        )

    def with_models(self, models: Calibration, methods: Sequence[str] | None = None) -> "PhaseTagger":
        """The same tagger (definitions, lexicon, settings, prototypes) with other trained models, e.g. those of a
        cross-validation fold; `methods` restricts the signals (ablation)."""
        self.prototypes()  # computed once here, shared by the copies
        tagger = copy.copy(self)
        tagger.classifier = models.classifier if _fits(models.classifier, self.embeddings) else None
        tagger.terms = models.terms
        if methods is not None:
            tagger.methods = tuple(methods)
        return tagger

    @property
    def version(self) -> str:
        """Changes when the phase files, the lexicon, the classifier or the settings change: the ingestion
        pipeline then re-tags every file (without re-embedding)."""
        digest = hashlib.sha256(prompts_hash().encode())
        if CLASSIFIER_FILE.is_file():
            digest.update(CLASSIFIER_FILE.read_bytes())
        digest.update(repr(self.config).encode())
        return digest.hexdigest()[:16]

    # --- prototypes -----------------------------------------------------------------------------------------
    def prototypes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(passage vectors, labels, question vectors, labels), normalised. Taken from the calibration file when it
        was built with this model and these prompt files, else embedded once per embedding instance."""
        if self._prototypes is None:
            passages, passage_labels, questions, question_labels = prototype_texts(self.definitions)
            pv, qv = self._given.get("proto_passages"), self._given.get("proto_questions")
            if pv is None or qv is None or len(pv) != len(passages) or len(qv) != len(questions):
                key = hashlib.sha256(json.dumps([passages, questions]).encode()).hexdigest()
                try:
                    per_model = _PROTOTYPE_CACHE.setdefault(self.embeddings, {})
                except TypeError:  # not weak-referenceable
                    per_model = {}
                if key not in per_model:
                    logger.info("Phasen-Prototypen werden eingebettet (%d Passagen, %d Fragen)", len(passages), len(questions))
                    per_model[key] = (
                        np.asarray(self.embeddings.embed_passages(passages), dtype=np.float32),
                        np.asarray(self.embeddings.embed_queries(questions), dtype=np.float32),
                    )
                pv, qv = per_model[key]
            self._prototypes = (_normalise(pv), passage_labels, _normalise(qv), question_labels)
        return self._prototypes

    # --- the signals (rows: texts, columns: PHASE_KEYS) ----------------------------------------------------------
    def proto_logits(self, vectors: np.ndarray, questions: bool = False) -> np.ndarray:
        pv, pl, qv, ql = self.prototypes()
        vectors = _normalise(vectors)
        scores = self._top_k(vectors @ pv.T, pl)
        if questions and len(qv):
            scores = np.maximum(scores, self._top_k(vectors @ qv.T, ql))
        return scores / self.config.proto_temperature

    def _top_k(self, sims: np.ndarray, labels: np.ndarray) -> np.ndarray:
        out = np.full((sims.shape[0], len(PHASE_KEYS)), -1.0)
        for index in range(len(PHASE_KEYS)):
            column = sims[:, labels == index]
            if column.shape[1]:
                k = min(self.config.proto_top_k, column.shape[1])
                out[:, index] = np.sort(column, axis=1)[:, -k:].mean(axis=1)
        return out

    def lexicon_logits(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Cues]]:
        rows, cues = [], []
        for text in texts:
            mass, found = self.lexicon.match(text)
            logits = self.config.lexicon_strength * np.log1p(mass)
            logits[_CROSS] += self.config.lexicon_cross_bias
            rows.append(logits)
            cues.append(found)
        return np.array(rows, dtype=np.float64).reshape(len(texts), len(PHASE_KEYS)), cues

    def classifier_logits(self, vectors: np.ndarray) -> np.ndarray | None:
        return None if self.classifier is None else self.classifier.logits(vectors)

    def distribution(
        self,
        texts: Sequence[str],
        vectors: np.ndarray | None,
        questions: bool = False,
        prior: Sequence[str] = (),
        methods: Sequence[str] | None = None,
    ) -> tuple[np.ndarray, list[Cues]]:
        """Pooled distribution over PHASE_KEYS per text, and each text's cue terms. `methods` is for the ablation."""
        config = self.config
        methods = self.methods if methods is None else methods
        lexicon, cues = self.lexicon_logits(texts)
        total = np.zeros((len(texts), len(PHASE_KEYS)))
        if "lexicon" in methods:
            total += config.lexicon_weight * log_softmax(lexicon)
        if "terms" in methods and self.terms is not None:
            total += config.terms_weight * log_softmax(self.terms.logits(texts))
        if vectors is not None and len(vectors):
            vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
            if "proto" in methods:
                total += config.proto_weight * log_softmax(self.proto_logits(vectors, questions))
            classifier = self.classifier_logits(vectors) if "classifier" in methods else None
            if classifier is not None:
                total += config.classifier_weight * log_softmax(classifier)
        for phase in prior:
            if phase in PHASES:
                total[:, PHASE_KEYS.index(phase)] += config.prior_strength
        return softmax(total), cues

    # --- public API -----------------------------------------------------------------------------------------
    def run(self, doc: Any, chunks: list[Any], vectors: dict[str, Sequence[float]]) -> dict[str, object]:
        """Enricher: sets chunk metadata phase_E/phase_K/phase_T (0..1) and phase (E|K|T|übergreifend); returns
        the document's phase and phase_scores for the registry. Uses the given vectors, never embeds."""
        if not chunks:
            return {}
        prior = [p for p in (getattr(doc, "ekt", None) or []) if p in PHASES]
        texts = [_chunk_text(chunk) for chunk in chunks]
        dist = np.zeros((len(chunks), len(PHASE_KEYS)))
        with_vector = [i for i, chunk in enumerate(chunks) if vectors.get(chunk.id) is not None]
        without = [i for i in range(len(chunks)) if i not in set(with_vector)]
        if with_vector:
            matrix = np.stack([np.asarray(vectors[chunks[i].id], dtype=np.float32) for i in with_vector])
            dist[with_vector], _ = self.distribution([texts[i] for i in with_vector], matrix, prior=prior)
        if without:  # no vector passed (should not happen): lexicon and prior only, never re-embed
            dist[without], _ = self.distribution([texts[i] for i in without], None, prior=prior)
        lengths = np.array([max(len(text), 50) for text in texts], dtype=np.float64)
        document = (dist * lengths[:, None]).sum(axis=0) / lengths.sum()
        share = self.config.doc_smoothing if len(chunks) > 1 else 0.0
        for chunk, row in zip(chunks, dist):
            mixed = (1 - share) * row + share * document
            chunk.metadata.update(_score_metadata(mixed))
            chunk.metadata["phase"] = self.primary(mixed)
        return {"phase": self.primary(document), "phase_scores": _scores(document)}

    def tag_text(self, text: str, vector: Sequence[float] | None = None) -> PhaseTag:
        if vector is None:
            vector = self.embeddings.embed_passages([text])[0]
        dist, cues = self.distribution([text], np.asarray(vector, dtype=np.float32)[None, :])
        return self._tag(dist[0], cues[0])

    def question_distribution(self, question: str, vector: Sequence[float] | None = None) -> tuple[np.ndarray, Cues]:
        if vector is None:
            vector = self.embeddings.embed_queries([question])[0]
        dist, cues = self.distribution([question], np.asarray(vector, dtype=np.float32)[None, :], questions=True)
        return dist[0], cues[0]

    def tag_question(self, question: str) -> PhaseTag:
        return self._tag(*self.question_distribution(question))

    def tag_answer(
        self, question: str, citations: Sequence[Citation], vector: Sequence[float] | None = None
    ) -> PhaseTag:
        """The answer's phase: the question estimate mixed with the cited chunks' phase scores. `vector` is the
        question's embedding when the caller has it."""
        dist, cues = self.question_distribution(question, vector)
        return self.answer_tag(dist, cues, citations)

    def answer_tag(self, question_dist: np.ndarray, question_cues: Cues, citations: Sequence[Citation]) -> PhaseTag:
        """Mix (question_weight) the question estimate with the citations' scores, each citation weighted by
        1/rank times its retrieval score (floored at half)."""
        rows, weights, snippets = [], [], []
        for citation in citations:
            row = _citation_distribution(citation)
            if row is not None:
                rows.append(row)
                score = min(max(float(citation.score or 0.0), 0.0), 1.0)
                weights.append((0.5 + 0.5 * score) / max(int(citation.n or 1), 1))
                snippets.append(citation.snippet or "")
        dist = np.asarray(question_dist, dtype=np.float64)
        if rows:
            w = np.array(weights) / sum(weights)
            sources = (np.array(rows) * w[:, None]).sum(axis=0)
            dist = self.config.question_weight * dist + (1 - self.config.question_weight) * sources
        phase = self.primary(dist)
        cues = question_cues
        if not cues.get(phase) and snippets:  # the question names no cue of that phase: name the cited text's
            cues = self.lexicon.match(" ".join(snippets[:3]))[1]
        return self._tag(dist, cues)

    def primary(self, dist: np.ndarray) -> str:
        """E, K or T when that phase dominates, else "übergreifend"."""
        return _primary(dist, self.config.dominance)

    def _tag(self, dist: np.ndarray, cues: Cues) -> PhaseTag:
        phase = self.primary(dist)
        return PhaseTag(phase, PHASE_LABELS[phase], self.explain(phase, cues), _scores(dist))

    def explain(self, phase: str, cues: Cues) -> str:
        """One German line naming up to three of the strongest cue terms found for the phase (nouns read as the
        topic: "Es geht um Betriebsmodell und Finanzierung."; other words are quoted as keywords)."""
        found = _dedupe([name for name, _ in cues.get(phase, [])])
        nouns = [name for name in found if name[:1].isupper()][:3]
        if nouns:
            reason = f"Es geht um {_join(nouns)}"
        elif found:
            reason = "Der Text spricht von " + _join([f"„{name}“" for name in found[:3]])
        else:
            reason = ""
        if phase == CROSS_PHASE:
            if reason:
                return f"Phasenübergreifend: {reason} – keine einzelne Phase der EKT-Methode."
            return "Phasenübergreifend: Der Text lässt sich keiner einzelnen Phase der EKT-Methode zuordnen."
        return f"Das gehört {PHASE_DATIVE[phase]}: {reason or 'Der Text ähnelt Beispielen für ' + self.definitions[phase].cue}."


# --------------------------------------------------------------------------------------------------------------
# helpers


def _fits(classifier: LinearModel | None, embeddings: Any) -> bool:
    if classifier is None:
        return False
    dimension = int(getattr(embeddings, "dimension", 0) or 0)
    name = getattr(embeddings, "model_name", "")
    return classifier.weights.shape[1] == dimension and (not classifier.model_name or classifier.model_name == name)


def _normalise(matrix: Any) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-9)


def _primary(dist: np.ndarray, dominance: float = 0.0) -> str:
    """The most probable label; "übergreifend" also when no phase reaches `dominance`."""
    best = int(np.argmax(dist))
    if best != _CROSS and dist[best] < dominance:
        return CROSS_PHASE
    return PHASE_KEYS[best]


def _scores(dist: np.ndarray) -> dict[str, float]:
    return {p: round(float(min(max(dist[i], 0.0), 1.0)), 4) for i, p in enumerate(PHASES)}


def _score_metadata(dist: np.ndarray) -> dict[str, float]:
    return {f"phase_{p}": value for p, value in _scores(dist).items()}


def _chunk_text(chunk: Any) -> str:
    return tagging_text(str(chunk.metadata.get("section") or ""), chunk.text)


def tagging_text(section: str | None, text: str) -> str:
    """What the lexicon and the term model read of a chunk: its section heading (headings name the topic) and text."""
    return f"{section}\n{text}" if section else text


def _citation_distribution(citation: Citation) -> np.ndarray | None:
    """A cited chunk's distribution from its stored scores (übergreifend = the rest), else from its phase."""
    scores = citation.phase_scores or {}
    if all(p in scores for p in PHASES):
        row = np.clip(np.array([float(scores[p]) for p in PHASES] + [0.0]), 0.0, 1.0)
        row[_CROSS] = max(0.0, 1.0 - row[:_CROSS].sum())
        return row / max(row.sum(), 1e-9)
    if citation.phase in PHASE_KEYS:
        row = np.full(len(PHASE_KEYS), 0.1 / (len(PHASE_KEYS) - 1))
        row[PHASE_KEYS.index(citation.phase)] = 0.9
        return row
    return None


def _dedupe(names: list[str]) -> list[str]:
    """Drop repeated terms and a term that a kept compound ends with ("Befragung" after "Kundenbefragung")."""
    out: list[str] = []
    keys: list[str] = []
    for name in names:
        key = "".join(_analyze_word(name)) or fold(name)
        if not any(kept.endswith(key) or key.endswith(kept) for kept in keys):
            out.append(name)
            keys.append(key)
    return out


def _join(terms: list[str]) -> str:
    return terms[0] if len(terms) == 1 else ", ".join(terms[:-1]) + " und " + terms[-1]

