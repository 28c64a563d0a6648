"""A frontend's side of the widgets the kernel shows for a question: their comms, the
values typed into them, the buttons clicked."""

from __future__ import annotations


class WidgetFront:
    """What a frontend does with a form: the widgets' comms, typed values, clicks."""

    def __init__(self, kc, msg_id: str | None = None) -> None:
        self.kc = kc
        self.msg_id = msg_id  # only what this cell sends (not what earlier ones left)
        self.states: dict[str, dict] = {}  # comm id -> the widget's state as last sent
        self.outputs: list[dict] = []

    def pump(self, until, timeout: float = 30) -> None:
        import queue
        import time

        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"timed out; states: {self.states}"
            try:
                message = self.kc.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                continue
            mine = message["parent_header"].get("msg_id") == self.msg_id
            if self.msg_id and not mine and message["msg_type"] != "comm_msg":
                continue  # an earlier cell's (a widget's updates have the click as parent)
            content = message["content"]
            if message["msg_type"] == "comm_open":
                self.states[content["comm_id"]] = dict(content["data"].get("state", {}))
            elif message["msg_type"] == "comm_msg" and content["data"].get("method") == "update":
                self.states.setdefault(content["comm_id"], {}).update(content["data"]["state"])
            elif message["msg_type"] in ("display_data", "stream", "error"):
                self.outputs.append({"msg_type": message["msg_type"], **content})

    def displayed(self) -> bool:
        return any(o["msg_type"] == "display_data" for o in self.outputs)

    def comm(self, description: str) -> str:
        return next(c for c, s in self.states.items() if s.get("description") == description)

    def type(self, description: str, value) -> None:
        self.send(self.comm(description), {"method": "update", "state": {"value": value},
                                           "buffer_paths": []})

    def click(self, description: str) -> None:
        self.send(self.comm(description), {"method": "custom", "content": {"event": "click"}})

    def send(self, comm_id: str, data: dict) -> None:
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", {"comm_id": comm_id,
                                                                    "data": data}))

    def notes(self) -> str:
        return " ".join(str(s.get("value", "")) for s in self.states.values()
                        if s.get("_model_name") == "HTMLModel")
