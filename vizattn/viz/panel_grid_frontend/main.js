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

let last = null;  // the args string last drawn, and whether its factors came with it (then or before)
window.addEventListener("message", e => {
  // the page sends the grid's JSON as one string (vizattn/app/panel_grid.py) and the factors as bytes beside it
  if (e.data && e.data.type === "streamlit:render") {
    const args = e.data.args.args, blob = e.data.args.blob, same = !!last && last.args === args;
    const factors = !!(blob && blob.byteLength) || (same && last.factors);
    // Streamlit sends the same args again as the page around it changes (a frame's height, a theme), and the page
    // sends them without the factors once we hold them: nothing new to draw, and drawing it again would undo a pin
    // the page has not heard of yet. The same args bring something only when they bring factors we lacked.
    if (same && (last.factors || !factors)) return;
    grid.render(Object.assign(JSON.parse(args), { blob: blob }));
    last = { args: args, factors: factors };  // only once drawn: args that failed to draw are drawn when re-sent
  }
});
send("streamlit:componentReady", { apiVersion: 1 });
