// The Streamlit host of the panel grid (grid.js): Streamlit's component protocol spoken directly. The page's
// relay (vizattn/app/query.py) calls window.pin; `vizattn bench app` reads window.vizattnTimings/PinTimings.
"use strict";

function send(type, data) {
  window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, data), "*");
}

const grid = VizattnGrid.mount(document.getElementById("root"), {
  tell: value => send("streamlit:setComponentValue", { value: value, dataType: "json" }),
  height: px => send("streamlit:setFrameHeight", { height: px }),
  marks: document.body,
});
grid.root.querySelector(".vizattn-tip").id = "tip";
window.vizattnTimings = grid.timings;  // pointer event → frame with the new panels painted (ms)
window.vizattnPinTimings = grid.pinTimings;
Object.defineProperty(window, "vizattnFactorBytes", { get: () => grid.factorBytes });
window.pin = grid.pin;

window.addEventListener("message", e => {
  // the page sends the grid's JSON as one string (vizattn/app/panel_grid.py) and the factors as bytes beside it
  if (e.data && e.data.type === "streamlit:render") {
    grid.render(Object.assign(JSON.parse(e.data.args.args), { blob: e.data.args.blob }));
  }
});
send("streamlit:componentReady", { apiVersion: 1 });
