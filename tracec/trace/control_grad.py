"""Gradients of the control-flow ops: backpropagation through time for scan
(a reverse scan whose step is the vector-Jacobian product of the forward
step) and a lazy ifelse of the two branches' gradients."""
import numpy as np

from .graph import Variable, clone_replace
from .tensor import Tensor


def _t(var):
    return Tensor(var, mutable=False)


def _floats(tensors):
    return [t is not None and t.dtype.kind == "f" for t in tensors]


def scan_grad(node, inputs, outputs, grads):
    """Reverse-mode rule of a scan node (see tracec.trace.scan for the input layout)."""
    from .autodiff import backward
    from .scan import scan
    info = node.params["info"]
    if any(-min(taps) != 1 for taps in info.state_taps):
        raise NotImplementedError(f"gradient of scan (at {info.loc.describe()}) through outputs with taps "
                                  "further back than -1 is not built yet")
    if info.n_updates:
        raise NotImplementedError(f"gradient of scan (at {info.loc.describe()}) through shared variables "
                                  "updated inside the step is not built yet")
    n_seq, n_rec, n_plain = len(info.seq_taps), info.n_states, info.n_plain_outputs
    seqs = inputs[1:1 + n_seq]
    inits = inputs[1 + n_seq:1 + n_seq + n_rec]
    others = inputs[1 + n_seq + n_rec:]  # non-sequences, then captured outer values
    g_rec, g_plain = grads[:n_rec], grads[n_rec:n_rec + n_plain]
    stacked = outputs[:n_rec + n_plain]
    if not stacked:
        raise NotImplementedError("gradient of a scan without outputs")
    n = stacked[0].shape[0]  # the recorded trip count (until-loops stop early)
    n_back = n if info.truncate_gradient < 0 else np.minimum(n, info.truncate_gradient)

    # forward values of each step, newest first
    fwd_seqs = [s[::-1] if info.go_backwards else s for s in seqs]
    step_slices, seq_tap_index = [], []
    for j, (s, taps) in enumerate(zip(fwd_seqs, info.seq_taps)):
        low = min(taps)
        for k in taps:
            step_slices.append(s[k - low:k - low + n][::-1])
            seq_tap_index.append((j, k - low))
    prev_states = [np.concatenate([np.expand_dims(init, 0), out[:n - 1]])[::-1]
                   for init, out in zip(inits, outputs[:n_rec])]
    rev_g = [g[::-1] for g in g_rec] + [g[::-1] for g in g_plain]
    other_wanted = _floats(others)
    acc_inits = [np.zeros_like(o) for o, w in zip(others, other_wanted) if w]
    seq_wanted = [_floats([seqs[j]])[0] for j, _ in seq_tap_index]
    inner = info.inner
    n_seq_inputs = len(step_slices)

    def reverse_step(*args):
        args = list(args)
        xs = args[:n_seq_inputs]
        prevs = args[n_seq_inputs:n_seq_inputs + n_rec]
        gs = args[n_seq_inputs + n_rec:n_seq_inputs + 2 * n_rec + n_plain]
        rest = args[n_seq_inputs + 2 * n_rec + n_plain:]
        adjoints, rest = rest[:n_rec], rest[n_rec:]
        accs, inner_others = rest[:len(acc_inits)], rest[len(acc_inits):]
        mapping = dict(zip(inner.inner_inputs, [v.variable for v in xs + prevs]))
        mapping.update(zip(inner.inner_inputs[n_seq_inputs + n_rec:] + inner.captured,
                           [v.variable for v in inner_others]))
        fwd = clone_replace(inner.outputs[:n_rec + n_plain], mapping)
        seeds = [(f, (gs[j] + adjoints[j]) if j < n_rec else gs[j]) for j, f in enumerate(fwd)
                 if f.dtype.kind == "f"]
        wrt = [v.variable for v in prevs] + [v.variable for v, w in zip(inner_others, other_wanted) if w]
        wrt += [v.variable for v, w in zip(xs, seq_wanted) if w]
        got = [_t(g) for g in backward(seeds, wrt, disconnected_inputs="ignore", what="scan gradient")]
        new_adjoints, got = got[:n_rec], got[n_rec:]
        new_accs = [a + g for a, g in zip(accs, got[:len(accs)])]
        return new_adjoints + new_accs + got[len(accs):]

    outputs_info = [np.zeros_like(i) for i in inits] + acc_inits
    outputs_info += [None] * sum(seq_wanted)
    result, _ = scan(reverse_step, sequences=step_slices + prev_states + rev_g, outputs_info=outputs_info,
                     non_sequences=list(others), n_steps=n_back, name=f"grad of {info.name or 'scan'}")
    result = result if isinstance(result, list) else [result]

    def last(stack, like):
        # value after the last reverse step; zero when the loop ran no step
        return np.concatenate([np.expand_dims(np.zeros_like(like), 0), stack])[-1]

    in_grads = [None] * len(inputs)
    for j, init in enumerate(inits):
        g_init = last(result[j], init)
        if info.truncate_gradient >= 0:  # truncated: the gradient stops before reaching the start
            g_init = np.where(n_back == n, g_init, np.zeros_like(g_init))
        in_grads[1 + n_seq + j] = g_init
    pos = n_rec
    for i, (o, w) in enumerate(zip(others, other_wanted)):
        if w:
            in_grads[1 + n_seq + n_rec + i] = last(result[pos], o)
            pos += 1
    seq_grads = {}
    for (j, shift), w in zip(seq_tap_index, seq_wanted):
        if not w:
            continue
        part = result[pos][::-1]  # steps n - n_back .. n - 1, oldest first
        pos += 1
        if j not in seq_grads:
            seq_grads[j] = np.zeros_like(fwd_seqs[j])
        seq_grads[j][n - n_back + shift:n + shift] += part
    for j, g in seq_grads.items():
        in_grads[1 + j] = g[::-1] if info.go_backwards else g
    return in_grads


def ifelse_grad(node, inputs, outputs, grads):
    """Gradient of a lazy conditional: each branch's gradient, still lazy."""
    from .autodiff import backward
    from .ifelse import ifelse
    info = node.params["info"]
    cond, values = inputs[0], inputs[1:]
    n_then = len(info.then_graph.captured)
    in_grads = [None]
    for taken, graph, vals in ((True, info.then_graph, values[:n_then]),
                               (False, info.else_graph, values[n_then:])):
        # each branch differentiates its own captured inputs; an outer value captured by both
        # branches is two node inputs, and the driver adds the two contributions
        # differentiate with respect to fresh stand-ins: captured values may depend on one
        # another (x and reshape(x)), and each must get only its own direct contribution
        fresh = [Variable(v.variable.type.with_weak(False) if v.variable.type.weak else v.variable.type)
                 for v in vals]
        fwd = clone_replace(graph.outputs, dict(zip(graph.captured, fresh)))
        seeds = [(f, g.variable) for f, g in zip(fwd, grads) if f.dtype.kind == "f" and g is not None]
        wanted = _floats(vals)
        wrt = [f for f, w in zip(fresh, wanted) if w]
        got = backward(seeds, wrt, disconnected_inputs="ignore", what="ifelse gradient") \
            if seeds and wrt else []
        got = iter(clone_replace(got, dict(zip(fresh, [v.variable for v in vals]))) if got else [])
        for v, w in zip(vals, wanted):
            if not w:
                in_grads.append(None)
                continue
            g = _t(next(got)) if seeds else np.zeros_like(v)
            zero = np.zeros_like(v)
            in_grads.append(ifelse(cond, g, zero) if taken else ifelse(cond, zero, g))
    return in_grads
