"""One browser tab's playground: its state, data, networks A (and B), trained in the session's own thread.

The WebSocket handler only posts messages into :attr:`Session.inbox`; everything that touches the
networks — settings, training, edits, snapshots — happens in the session thread, so no lock guards
a model and the event loop never waits on training. While playing the thread runs epochs back to back
and answers the page's ``frame`` requests (one in flight: the page asks again after drawing) with a
snapshot of the latest epoch, so training speed and frame rate are independent. What a frame holds is
built by :mod:`.frames`; the networks and their TF training rule live in :mod:`.net`.

Torch threads: the thread calls ``torch.set_num_threads(1)``. With torch's OpenMP backend (the CPU
build used here) that setting is per OS thread — measured: the main thread keeps its count — so tabs
do not fight over an intra-op pool that at 10-point batches costs more than it saves (1 thread: ~430
epochs/s, 2 threads: ~60 on the default setup).
"""
from __future__ import annotations

import json
import logging
import math
import queue
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch

from trainlab.errors import TrainlabError, problem
from trainlab.playground import data as pdata
from trainlab.playground.frames import VERDICT_EVERY, NetHolder, net_frame, net_json, points_json
from trainlab.playground.net import NetSpec, Network, Trainer, TrainSettings, targets
from trainlab.playground.state import BY_KEY, FEATURES, UPLOAD, net_view, parse_query, parse_state, seed_of, spec, to_query
from trainlab.playground.verdict import add_layer_row

log = logging.getLogger("trainlab.playground")

__all__ = ["Session", "MAX_INBOX"]

MAX_INBOX = 256  # messages waiting for the session thread; more is a flood and is refused
EDIT_LIMIT = 100.0  # a weight or bias typed into the page is clamped to ±EDIT_LIMIT


class Session:
    """A tab's session. ``send(text)`` must be thread-safe (the app schedules it on the event loop)."""

    def __init__(self, send: Callable[[str], None], runs_dir: Path | str = "runs") -> None:
        self.send_text = send
        self.runs_dir = Path(runs_dir)
        self.inbox: queue.Queue = queue.Queue(maxsize=MAX_INBOX)
        self.state: dict[str, Any] = {}
        self.nets: dict[str, NetHolder] = {}
        self.upload: pdata.Points | None = None
        self.playing = False
        self.closed = False
        self.version = 0  # bumped whenever what a frame shows changes
        self._frame_wanted = False
        self._hover: tuple[str, int, int] | None = None
        self._sent_version = -1
        self._verdict_at = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True, name="playground-session")
        self.thread.start()

    # --- called from the event loop -----------------------------------------------------------------

    def post(self, msg: dict[str, Any]) -> bool:
        """Queue a message for the session thread; False when the inbox is full (the page is flooding)."""
        try:
            self.inbox.put_nowait(msg)
            return True
        except queue.Full:
            return False

    def close(self) -> None:
        self.closed = True
        try:
            self.inbox.put_nowait({"type": "close"})
        except queue.Full:
            pass  # the thread sees ``closed`` after its current message

    # --- the session thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        torch.set_num_threads(1)
        while not self.closed:
            trainable = self.playing and any(h.trainer.stopped is None for h in self.nets.values())
            try:
                msg = self.inbox.get(block=not trainable)
                self._handle(msg)
                while not self.closed:  # drain what else arrived before training on
                    self._handle(self.inbox.get_nowait())
            except queue.Empty:
                pass
            if self.closed:
                break
            if self.playing and self.nets:
                self._safe(self._train_once, pause=True)
            if self._frame_wanted and self.version != self._sent_version:
                self._safe(self._send_frame)

    def _safe(self, fn: Callable[[], None], pause: bool = False) -> None:
        """Run ``fn``; an error becomes a message to the page. ``pause``: training stops too (an error raised by
        an epoch would otherwise come back at every frame), and the page's play button shows it."""
        try:
            fn()
            return
        except TrainlabError as exc:
            text = str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug must not end the tab's session, nor the server
            log.exception("playground session error")
            text = f"internal error: {type(exc).__name__}: {exc}"
        if pause and self.playing:
            self.playing, self._frame_wanted = False, True
            self.version += 1
            text = f"training paused: {text}"
        self.emit({"type": "message", "level": "error", "text": text})

    def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        handler = getattr(self, f"_on_{kind}", None) if isinstance(kind, str) and kind.isidentifier() else None
        if handler is None:
            self.emit({"type": "message", "level": "error",
                       "text": problem("message type", "one of " + ", ".join(HANDLED), kind, "Reload the page")})
            return
        self._safe(lambda: handler(msg))

    def emit(self, obj: dict[str, Any]) -> None:
        try:
            self.send_text(json.dumps(obj, separators=(",", ":"), allow_nan=False))
        except RuntimeError:  # the server's event loop is closed (it is shutting down): no page reads this any more
            self.closed = True

    # --- handlers -------------------------------------------------------------------------------------

    def _on_close(self, msg: dict[str, Any]) -> None:
        self.closed = True

    def _on_init(self, msg: dict[str, Any]) -> None:
        query = msg.get("query", "")
        raw = parse_query(query) if isinstance(query, str) else {}
        state, notes = parse_state(raw)
        if state["dataset"] == UPLOAD and self.upload is None:
            notes.append(problem("dataset", "a generated dataset when opening a link", UPLOAD,
                                 "Using circle; upload the CSV again"))
            state["dataset"], state["problem"] = "circle", "classification"
        self.state = state
        self._rebuild_data()
        self._send_state(notes, spec_too=True)

    def _on_set(self, msg: dict[str, Any]) -> None:
        changes = msg.get("changes")
        if not isinstance(changes, dict):
            raise TrainlabError(problem("changes", "a mapping of setting to value", type(changes).__name__,
                                        "Send {\"changes\": {\"noise\": 10}}"))
        old = self.state
        state, notes = parse_state({str(k): v for k, v in list(changes.items())[:200]}, base=old)
        if state["dataset"] == UPLOAD and self.upload is None:
            notes.append(problem("dataset", "a generated dataset until a CSV is uploaded", UPLOAD,
                                 f"Keeping {old['dataset']}"))
            state["dataset"] = old["dataset"]
        self.state = state
        changed = {k for k in state if state[k] != old.get(k)}
        scopes = {BY_KEY[k[2:] if k.startswith("b.") else k].scope for k in changed}
        if "data" in scopes:
            self._rebuild_data()
        else:
            for which in self._active():
                prefix = "" if which == "a" else "b."
                net_changed = any(BY_KEY[k[len(prefix):]].scope == "net" for k in changed
                                  if k.startswith(prefix) and (prefix or not k.startswith("b.")))
                if net_changed or which not in self.nets:
                    self._build_net(which)
                else:
                    self.nets[which].trainer.apply(self._settings(which))
            for which in list(self.nets):
                if which not in self._active():
                    del self.nets[which]
        self._send_state(notes)

    def _on_play(self, msg: dict[str, Any]) -> None:
        self.playing = True
        self.version += 1

    def _on_pause(self, msg: dict[str, Any]) -> None:
        self.playing = False
        self.version += 1

    def _on_step(self, msg: dict[str, Any]) -> None:
        self.playing = False
        self._train_once(force=True)

    def _on_reset(self, msg: dict[str, Any]) -> None:
        for which in self._active():
            self._build_net(which)
        self._send_state([])

    def _on_regenerate(self, msg: dict[str, Any]) -> None:
        self.state["seed"] = secrets.randbelow(2**31)
        self._rebuild_data()
        self._send_state([])

    def _on_frame(self, msg: dict[str, Any]) -> None:
        self._frame_wanted = True
        hover = msg.get("hover")
        parsed = None
        if isinstance(hover, list) and len(hover) == 3 and hover[0] in self.nets \
                and all(isinstance(v, int) and not isinstance(v, bool) for v in hover[1:]):
            parsed = (hover[0], hover[1], hover[2])
        if parsed != self._hover:
            self._hover = parsed
            self.version += 1
        if msg.get("force"):
            self.version += 1

    def _on_edit(self, msg: dict[str, Any]) -> None:
        which, layer, kind, i, j = (msg.get(k) for k in ("net", "layer", "kind", "i", "j"))
        holder = self.nets.get(which) if isinstance(which, str) else None
        if holder is None:
            raise TrainlabError(problem("net", f"one of {', '.join(self.nets)}", which, "Edit a drawn network"))
        linears = holder.trainer.net.linears
        ok = isinstance(layer, int) and 0 <= layer < len(linears) and kind in ("w", "b") and isinstance(i, int) \
            and 0 <= i < linears[layer].out_features and (kind == "b" or isinstance(j, int) and 0 <= j < linears[layer].in_features)
        if not ok:
            raise TrainlabError(problem("edit", "a weight or bias of the drawn network", [layer, kind, i, j],
                                        "Click a link or a neuron"))
        value = msg.get("value")
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v):
            raise TrainlabError(problem("weight", "a finite number", value, "Type a number such as 0.5"))
        if abs(v) > EDIT_LIMIT:
            self.emit({"type": "message", "level": "warning",
                       "text": problem("weight", f"between -{EDIT_LIMIT:g} and {EDIT_LIMIT:g}", v,
                                       f"Using {math.copysign(EDIT_LIMIT, v):g}")})
            v = math.copysign(EDIT_LIMIT, v)
        holder.trainer.set_param(layer, kind, i, j if kind == "w" else 0, v)
        holder.sent = holder.trainer.epochs - 1  # the current epoch's row has new losses: send it again
        self.version += 1

    def _on_upload(self, msg: dict[str, Any]) -> None:
        text = msg.get("text")
        if not isinstance(text, str):
            raise TrainlabError(problem("CSV file", "text", type(text).__name__, "Choose a .csv file"))
        points = pdata.parse_csv(text, seed_of(self.state))
        self.upload = points
        self.state["dataset"], self.state["problem"] = UPLOAD, points.task  # the menu shows the points' problem
        self._rebuild_data()
        n = len(points)
        what = f"{points.n_classes} classes" if points.task == "classification" else "regression"
        self._send_state([])
        self.emit({"type": "message", "level": "info", "text": f"Uploaded {n} points ({what})."})

    def _on_save_run(self, msg: dict[str, Any]) -> None:
        from trainlab.playground.export import save_run
        which = msg.get("net", "a")
        if which not in self.nets:
            raise TrainlabError(problem("net", f"one of {', '.join(self.nets)}", which, "Save a drawn network"))
        path = save_run(self, which, msg.get("name"), self.runs_dir)
        self.emit({"type": "saved", "net": which, "path": str(path)})

    def _on_copy_config(self, msg: dict[str, Any]) -> None:
        from trainlab.playground.export import config_yaml
        which = msg.get("net", "a")
        if which not in self.nets:
            raise TrainlabError(problem("net", f"one of {', '.join(self.nets)}", which, "Pick a drawn network"))
        self.emit({"type": "config", "net": which, "yaml": config_yaml(self, which)})

    # --- building -------------------------------------------------------------------------------------

    def _active(self) -> list[str]:
        return ["a", "b"] if self.state.get("compare") else ["a"]

    def _rebuild_data(self) -> None:
        s = self.state
        if s["dataset"] == UPLOAD and self.upload is not None:
            self.points = self.upload
        else:
            self.points = pdata.make_points(s["dataset"], s["noise"], seed_of(s), s["classes"])
        self.train_pts, self.test_pts = pdata.split_points(self.points, s["percTrainData"])
        self.fit_pts, self.val_pts = pdata.split_validation(self.train_pts, s["percValData"], seed_of(s))
        self.nets = {}
        for which in self._active():
            self._build_net(which)

    def _settings(self, which: str) -> TrainSettings:
        v = net_view(self.state, which)
        return TrainSettings(lr=v["learningRate"], regularization=v["regularization"],
                             reg_rate=v["regularizationRate"], batch_size=v["batchSize"], optimizer=v["optimizer"],
                             schedule=v["schedule"], max_epochs=v["maxEpochs"], patience=v["patience"])

    def _build_net(self, which: str) -> None:
        v = net_view(self.state, which)
        feats = [k for k in FEATURES if v[k]]
        hidden = list(v["networkShape"])
        acts = list(v["activations"]) or [v["activation"]] * len(hidden)
        pts = self.points
        if pts.task == "regression":
            output, n_out = "linear", 1
        elif v["loss"] == "cross_entropy" or (pts.n_classes or 2) > 2:
            output, n_out = "softmax", pts.n_classes or 2
        else:
            output, n_out = "tanh", 1
        spec_ = NetSpec(tuple(feats), tuple(hidden), tuple(acts), output, n_out, v["dropout"], v["batchnorm"],
                        v["initZero"])
        net = Network(spec_, seed=seed_of(self.state))
        fit, va, te = self.fit_pts, self.val_pts, self.test_pts
        tensors = lambda p: (pdata.features(p.xy, feats), targets(p.label, output))  # noqa: E731
        trainer = Trainer(net, tensors(fit), tensors(te), self._settings(which), val=tensors(va))
        self.nets[which] = NetHolder(which, trainer, feats)
        self.version += 1

    # --- training and frames --------------------------------------------------------------------------

    def _train_once(self, force: bool = False) -> None:
        for h in self.nets.values():
            t = h.trainer
            if t.stopped is None or force and t.stopped_by != "non_finite":
                if force:
                    t.clear_stop()
                t.epoch()
                if t.epochs == 1:
                    add_layer_row(h.layers, t)  # the saturation rule compares the first epoch with the last
        self.version += 1
        if not force and all(h.trainer.stopped for h in self.nets.values()):
            self.playing = False

    def _send_state(self, notes: list[str], spec_too: bool = False) -> None:
        s = self.state
        msg: dict[str, Any] = {
            "type": "state", "state": s, "query": to_query(s), "notes": notes, "playing": self.playing,
            "task": self.points.task, "classes": self.points.n_classes,
            "train": points_json(self.train_pts), "test": points_json(self.test_pts),
            "nets": {w: net_json(h) for w, h in self.nets.items()},
        }
        if spec_too:
            msg["spec"] = spec()
        self.emit(msg)
        self.version += 1
        self._frame_wanted = True  # the page redraws a new network at once

    def _send_frame(self) -> None:
        self._frame_wanted = False
        self._sent_version = self.version
        frame: dict[str, Any] = {"type": "frame", "playing": self.playing, "nets": {}}
        verdict_due = time.monotonic() - self._verdict_at >= VERDICT_EVERY
        for which, h in self.nets.items():
            frame["nets"][which] = net_frame(h, self._hover, verdict_due)
        if verdict_due:
            self._verdict_at = time.monotonic()
        self.emit(frame)


HANDLED = sorted(name[4:] for name in vars(Session) if name.startswith("_on_"))
