// GenieRedux player: keyboard -> WebSocket -> frames on a canvas. One socket = one server session.
"use strict";

const FRAME = 1, GIF = 2;  // first byte of a binary message (play/server.py)
const KEY_ACTIONS = { ArrowRight: "RIGHT", ArrowLeft: "LEFT", ArrowUp: "UP", ArrowDown: "DOWN", Space: "ACTION_PRIMARY" };
const ACTION_KEYS = { RIGHT: "→", LEFT: "←", UP: "↑", DOWN: "↓", ACTION_PRIMARY: "space", UP_RIGHT: "↑→", UP_LEFT: "↑←" };

const $ = (id) => document.getElementById(id);
const state = {
  socket: null, hello: null, actionNames: [], held: [], pointerAction: null,
  inFlight: false, started: false, frameCount: 0, frameTimes: [], session: 0,
};
window.player = state;  // for tests and the console

function showMessage(text, isError) {
  $("message").textContent = text;
  $("message").className = isError ? "message error" : "message";
}

// The action the held keys mean in this game; null = nothing to do (no NOOP in the game).
function currentAction() {
  const names = state.actionNames;
  if (state.pointerAction) return state.pointerAction;
  const digit = state.held.filter((code) => /^Digit[1-9]$/.test(code)).pop();  // latent actions: 1..9
  if (digit && names[Number(digit.slice(5)) - 1]) return names[Number(digit.slice(5)) - 1];
  const held = state.held.map((code) => KEY_ACTIONS[code]);
  const has = (name) => held.includes(name);
  if (has("UP") && has("RIGHT") && names.includes("UP_RIGHT")) return "UP_RIGHT";
  if (has("UP") && has("LEFT") && names.includes("UP_LEFT")) return "UP_LEFT";
  for (let i = held.length - 1; i >= 0; i--) {  // the latest pressed key wins
    let name = held[i];
    if (name === "ACTION_PRIMARY" && !names.includes(name)) name = "UP";  // jump where there is no button
    if (names.includes(name)) return name;
  }
  return names.includes("NOOP") ? "NOOP" : null;
}

function highlight() {
  const action = currentAction();
  for (const item of $("actions").children) item.classList.toggle("active", item.dataset.action === action);
}

function pump() {
  highlight();
  if (!state.started || state.inFlight || !state.socket || state.socket.readyState !== WebSocket.OPEN) return;
  const action = currentAction();
  if (action === null) return;
  state.inFlight = true;
  state.socket.send(JSON.stringify({ type: "step", action }));
}

function drawFrame(bytes) {
  const size = bytes[1], canvas = $("frame");
  if (canvas.width !== size) { canvas.width = size; canvas.height = size; }
  const image = new ImageData(size, size);
  for (let p = 0, q = 2; p < size * size * 4; p += 4, q += 3) {
    image.data[p] = bytes[q]; image.data[p + 1] = bytes[q + 1]; image.data[p + 2] = bytes[q + 2]; image.data[p + 3] = 255;
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
}

function updateFps() {
  const now = performance.now();
  state.frameTimes = state.frameTimes.filter((t) => now - t < 2000);
  const times = state.frameTimes;
  const fps = times.length >= 2 && now - times[times.length - 1] < 1000
    ? (times.length - 1) / ((times[times.length - 1] - times[0]) / 1000) : 0;
  $("fps").textContent = fps.toFixed(1);
}

function setActions(names) {
  state.actionNames = names;
  const list = $("actions");
  list.replaceChildren(...names.map((name) => {
    const item = document.createElement("li");
    item.dataset.action = name;
    item.textContent = name;
    const hint = ACTION_KEYS[name] || (name.startsWith("LATENT_") ? String(Number(name.slice(7)) + 1) : "");
    if (hint) {
      const key = document.createElement("kbd");
      key.textContent = hint;
      item.append(key);
    }
    item.addEventListener("pointerdown", () => { state.pointerAction = name; pump(); });
    return item;
  }));
  highlight();
}

function fillEpisodes() {
  const game = state.hello.games.find((g) => g.name === $("game").value);
  $("episode").replaceChildren(...game.episodes.map((e) => new Option(`${e.id} (${e.num_frames} frames)`, e.id)));
  updateFrameLimit();
}

function updateFrameLimit() {
  const game = state.hello.games.find((g) => g.name === $("game").value);
  const episode = game.episodes.find((e) => e.id === $("episode").value);
  if (episode) $("start-frame").max = episode.num_frames - state.hello.num_prime_frames;
}

function onHello(hello) {
  state.hello = hello;
  state.session = hello.session;
  $("connection").textContent = `connected · session ${hello.session} (${hello.num_sessions} playing)`;
  $("game").replaceChildren(...hello.games.map((g) => new Option(g.name, g.name)));
  fillEpisodes();
  $("steps").value = hello.settings.maskgit_steps;
  $("temperature").value = hello.settings.temperature;
  showSettings();
}

function onStarted(started) {
  setActions(started.action_names);
  state.started = true;
  state.inFlight = false;
  state.frameCount = 0;
  state.frameTimes = [];
  $("frame-count").textContent = "0";
  $("start-info").textContent = started.game === "upload"
    ? "from your image" : `${started.game} · ${started.episode_id} · frame ${started.frame}`;
  if (started.game !== "upload") {
    $("game").value = started.game;
    fillEpisodes();
    $("episode").value = started.episode_id;
    $("start-frame").value = started.frame;
  }
  showMessage("", false);
}

function onBinary(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes[0] === FRAME) {
    drawFrame(bytes);
    if (state.started && state.inFlight) {
      state.inFlight = false;
      state.frameCount += 1;
      state.frameTimes.push(performance.now());
      $("frame-count").textContent = String(state.frameCount);
    }
    pump();
  } else if (bytes[0] === GIF) {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([bytes.subarray(1)], { type: "image/gif" }));
    link.download = "genie_redux_session.gif";
    document.body.append(link);
    link.click();
    link.remove();
    showMessage(`gif saved (${(bytes.length / 1024).toFixed(0)} KB)`, false);
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws`);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => {
    if (typeof event.data !== "string") return onBinary(event.data);
    const message = JSON.parse(event.data);
    if (message.type === "hello") onHello(message);
    else if (message.type === "started") onStarted(message);
    else if (message.type === "error") { state.inFlight = false; showMessage(message.message, true); }
  };
  socket.onclose = (event) => {
    state.started = false;
    const why = event.code === 1009 ? "a message was too big" : event.reason || `code ${event.code}`;
    $("connection").textContent = "disconnected";
    if (!$("message").classList.contains("error")) showMessage(`the server closed the connection (${why}): reload the page`, true);
  };
  state.socket = socket;
}

function send(message) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(message));
}

function showSettings() {
  $("steps-value").textContent = $("steps").value;
  $("temperature-value").textContent = Number($("temperature").value).toFixed(2);
}

function isTyping(target) {
  return target instanceof HTMLInputElement && (target.type === "number" || target.type === "text");
}

document.addEventListener("keydown", (event) => {
  if (isTyping(event.target)) return;
  if (event.code === "KeyR") { send({ type: "reset" }); return; }
  if (!(event.code in KEY_ACTIONS) && !/^Digit[1-9]$/.test(event.code)) return;
  event.preventDefault();
  if (event.target instanceof HTMLElement && event.target !== document.body) event.target.blur();
  if (!state.held.includes(event.code)) state.held.push(event.code);
  pump();
});
document.addEventListener("keyup", (event) => {
  state.held = state.held.filter((code) => code !== event.code);
  highlight();
});
window.addEventListener("blur", () => { state.held = []; state.pointerAction = null; highlight(); });
document.addEventListener("pointerup", () => { state.pointerAction = null; highlight(); });

$("game").addEventListener("change", fillEpisodes);
$("episode").addEventListener("change", updateFrameLimit);
$("start").addEventListener("click", () => send({
  type: "start", game: $("game").value, episode_id: $("episode").value, frame: $("start-frame").value,
}));
$("random-start").addEventListener("click", () => send({ type: "start", game: $("game").value }));
$("reset").addEventListener("click", () => send({ type: "reset" }));
$("gif").addEventListener("click", () => send({ type: "gif" }));
$("upload").addEventListener("change", async () => {
  const file = $("upload").files[0];
  if (!file) return;
  showMessage(`uploading ${file.name}…`, false);
  state.socket.send(await file.arrayBuffer());
  $("upload").value = "";
});
for (const id of ["steps", "temperature"]) {
  $(id).addEventListener("input", showSettings);
  $(id).addEventListener("change", () => send({
    type: "settings", maskgit_steps: Number($("steps").value), temperature: Number($("temperature").value),
  }));
}
setInterval(updateFps, 250);
connect();
