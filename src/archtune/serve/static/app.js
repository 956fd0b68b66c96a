// archtune web page: send one image to /explain and show what the model makes of it.
"use strict";

const $ = (id) => document.getElementById(id);
let classes = [];

function setState(state, message) {
  document.body.dataset.state = state;
  const status = $("status");
  status.textContent = message || "";
  status.className = state === "error" ? "error" : "";
}

function percent(p) {
  return (p * 100).toFixed(p >= 0.995 || p < 0.0005 ? 0 : 1) + "%";
}

async function loadModel() {
  try {
    const res = await fetch("model");
    const info = await res.json();
    classes = info.classes;
    const [h, w, c] = info.input_shape;
    const best = (info.metrics && info.metrics.best) || {};
    const parts = [`model <strong>${escapeHtml(info.name)}</strong>`,
      `${info.params.toLocaleString()} parameters`, `input ${h} × ${w} × ${c}`,
      `${info.classes.length} classes`];
    if (best.dev_accuracy !== undefined) parts.push(`dev accuracy ${percent(best.dev_accuracy)}`);
    if (info.metrics.test_accuracy != null) parts.push(`test accuracy ${percent(info.metrics.test_accuracy)}`);
    $("model-info").innerHTML = parts.join(" · ");
    $("size-hint").textContent = `${h} × ${w}`;
    setState("ready", "");
  } catch (err) {
    setState("error", "could not reach the model: " + err);
  }
}

function escapeHtml(text) {
  const div = document.createElement("div");
  div.textContent = text;
  return div.innerHTML;
}

function renderBars(pred) {
  const bars = $("bars");
  bars.replaceChildren();
  pred.probabilities.forEach((p, i) => {
    const li = document.createElement("li");
    if (i === pred.index) li.className = "top";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = classes[i] || `class ${i}`;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${Math.max(p * 100, 0.5)}%`;
    track.appendChild(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = percent(p);
    li.append(name, track, value);
    bars.appendChild(li);
  });
}

function renderMaps(act) {
  const section = $("activations");
  const maps = $("maps");
  maps.replaceChildren();
  if (!act) {
    section.hidden = false;
    $("act-layer").textContent = "";
    $("act-note").textContent = "This model has no convolution layer (an MLP), so there are no maps to show.";
    return;
  }
  const [f, h, w] = act.shape;
  $("act-layer").textContent = `(${act.layer}: ${f} maps of ${h} × ${w})`;
  $("act-note").textContent = "Bright means strongly active; all maps share one colour scale" +
    ` (0 to ${act.max.toFixed(2)}).` +
    (act.inactive ? ` ${act.inactive} of ${f} maps are inactive for this image.` : "");
  act.maps.forEach((src, i) => {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = src;
    img.className = "pixelated";
    img.alt = `map ${i}`;
    const cap = document.createElement("figcaption");
    cap.textContent = i;
    fig.append(img, cap);
    maps.appendChild(fig);
  });
  section.hidden = false;
}

async function send(file) {
  if (!file) return;
  setState("busy", `sending ${file.name}…`);
  const original = $("original");
  original.onload = () => {  // blow small images up without blurring them
    original.classList.toggle("pixelated", Math.max(original.naturalWidth, original.naturalHeight) < 168);
  };
  original.src = URL.createObjectURL(file);
  $("original-caption").textContent = `your image: ${file.name}`;
  const body = new FormData();
  body.append("file", file, file.name);
  let data;
  try {
    const res = await fetch("explain", { method: "POST", body });
    data = await res.json();
    if (!res.ok) {
      $("result").hidden = true;
      $("activations").hidden = true;
      const detail = data.detail || res.statusText;
      setState("error", detail.includes(file.name) ? detail : `${file.name}: ${detail}`);
      return;
    }
  } catch (err) {
    setState("error", "request failed: " + err);
    return;
  }
  classes = data.classes;
  const pred = data.prediction;
  $("model-input").src = data.input.png;
  $("input-caption").textContent = `as the model sees it (${data.input.width} × ${data.input.height}` +
    (pred.inverted ? ", inverted: the background was light)" : ")");
  $("result-label").textContent = pred.label;
  $("result-prob").textContent = percent(pred.probability);
  renderBars(pred);
  $("result").hidden = false;
  renderMaps(data.activations);
  setState("done", "");
}

function setup() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => send(e.target.files[0]));
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault();
    drop.classList.remove("over");
  }));
  drop.addEventListener("drop", (e) => send(e.dataTransfer.files[0]));
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") $("file").click();
  });
  loadModel();
}

setup();
