// MotionSight: show a node's text result (the MLLM's answer, the dry-run request, the route,
// the action objects) on the node after a run. The Python nodes return {"ui": {"text": [...]}}
// like core "Preview Any"; this draws it the way the frontend's own Comfy.PreviewAny does.
import { app } from "../../scripts/app.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

const TEXT_NODES = new Set([
  "MotionSightAsk",
  "MotionSightAnswer",
  "MotionSightRouteQuestion",
  "MotionSightExtractActionObjects",
  "MotionSightDescribeMotion",
]);
const WIDGET = "motionsight_text";

app.registerExtension({
  name: "MotionSight.ShowText",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!TEXT_NODES.has(nodeData.name)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, [message]);
      const text = (message?.text ?? []).map(String).join("\n");
      let widget = this.widgets?.find((w) => w.name === WIDGET);
      if (!widget) {
        // Created on the first result only, so loading or saving a workflow is unchanged.
        widget = ComfyWidgets["STRING"](this, WIDGET, ["STRING", { multiline: true }], app).widget;
        widget.element.readOnly = true;
        widget.serialize = false;
      }
      widget.value = text;
      const [width, height] = this.computeSize();
      this.setSize([Math.max(this.size[0], width), Math.max(this.size[1], height)]);
      app.graph?.setDirtyCanvas(true, true);
    };
  },
});
