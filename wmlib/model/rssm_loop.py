"""The RSSM's posterior loop, written for speed: the one sequential part of the RSSM as one autograd node.

The loop over time is the only sequential part of the RSSM, and at the default batch of 16 it is bound by the
cost of each operation more than by arithmetic.  So it is one autograd node for the whole sequence, as cuDNN's
fused RNN layers are: the forward runs every step without recording a graph, and the backward runs the steps
in reverse with the derivative kernels written out (``tanh_backward``, ``sigmoid_backward``, ``silu_backward``,
``native_layer_norm_backward``, ``_softmax_backward_data``).  Per step that saves autograd's ~25 recorded nodes;
per sequence, every weight gradient becomes one matmul over all steps, ``sum_t dY_t^T X_t``, instead of T small
ones added into a buffer, and every per-step gradient is written into one ``(T, B, ·)`` buffer that is also the
step biases' gradient.  Tensors are time-major inside, so that each step reads and writes contiguous rows.

The forward matmuls use contiguous copies of ``W^T`` made once per pass: ``F.linear`` multiplies by a
transposed view of W, and for a few rows (the batch of 16) the CPU BLAS is 4–5× slower on that view than on a
contiguous (in, out) matrix: 0.87–1.06 ms against 0.17–0.26 ms for 16 × 512 @ 512 × 1792 here
(bench/matmul_layouts.py).  The backward's ``dY @ W`` reads W as it is stored, the fast layout already.

Kept beside the model rather than inside it: :class:`wmlib.model.models.RSSM` reads as DreamerV3's RSSM and calls
:class:`RSSMLoop` for its loop over time; ``tests/model/test_rssm_loop.py`` checks the loop's values and every
gradient against the same loop written with plain autograd.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .categorical import sample_index


def gru_forward(gates, deter, norm_weight, norm_bias, eps):
    """The RSSM's GRU step (DreamerV3's variant: LayerNorm on the gates, reset applied to the whole candidate), from
    the summed gate pre-activations ``(B, 3D)`` laid out [reset | update | candidate]: the new state ``(B, D)`` and
    what :func:`gru_backward` needs."""
    size = deter.shape[-1]
    normed, mean, rstd = torch.native_layer_norm(gates, (3 * size,), norm_weight, norm_bias, eps)  # (B, 3D)
    reset_update = torch.sigmoid(normed[:, : 2 * size])  # (B, 2D)
    candidate_in = normed[:, 2 * size :]  # (B, D)
    candidate = torch.tanh(reset_update[:, :size] * candidate_in)  # (B, D)
    new = torch.lerp(deter, candidate, reset_update[:, size:])  # deter + update * (candidate - deter)
    return new, (gates, deter, mean, rstd, reset_update, candidate_in, candidate)


def gru_backward(grad, saved, norm_weight, norm_bias, grad_gates):
    """Gradients of :func:`gru_forward` from that of the new state: writes the gates' gradient into
    ``grad_gates`` ``(B, 3D)`` and returns the old state's, and the LayerNorm weight's and bias's."""
    gates, deter, mean, rstd, reset_update, candidate_in, candidate = saved
    size = deter.shape[-1]
    reset, update = reset_update[:, :size], reset_update[:, size:]
    grad_normed = gates.new_empty(gates.shape)  # (B, 3D): [reset | update | candidate], filled in place
    grad_candidate = torch.ops.aten.tanh_backward(grad * update, candidate)  # (B, D)
    torch.mul(grad_candidate, candidate_in, out=grad_normed[:, :size])  # reset, before its sigmoid
    torch.mul(grad, candidate - deter, out=grad_normed[:, size : 2 * size])  # update, before its sigmoid
    torch.mul(grad_candidate, reset, out=grad_normed[:, 2 * size :])
    grad_normed[:, : 2 * size] = torch.ops.aten.sigmoid_backward(grad_normed[:, : 2 * size], reset_update)
    grad_in, grad_weight, grad_bias = torch.ops.aten.native_layer_norm_backward(
        grad_normed, gates, (3 * size,), mean, rstd, norm_weight, norm_bias, [True, True, True])
    grad_gates.copy_(grad_in)
    return grad - grad * update, grad_weight, grad_bias


def posterior_loop(step_bias, from_deter_weight, posterior_weight, stoch_weight, posterior_norm_weight,
                    posterior_norm_bias, posterior_bias, gru_norm_weight, gru_norm_bias, noise, constants,
                    keep: bool = False):
    """The forward of :class:`RSSMLoop`, which takes the same arguments (and the whole loop when no gradient is
    needed).  Returns ``h_t`` ``(T, B, D)``, the unimix posteriors ``(T, B, S, C)``, the sampled classes
    ``(T, B, S)`` and, with ``keep``, what the backward needs (else ``None``)."""
    length, batch, _ = step_bias.shape
    size, classes = stoch_weight.shape[0] // 3, constants.classes
    from_deter_t = from_deter_weight.T.contiguous()  # (D, 3D + hidden)
    posterior_t = posterior_weight.T.contiguous()  # (hidden, S*C)
    stoch_rows = stoch_weight.T.contiguous()  # (S*C, 3D): the rows that one-hot z picks
    deter = step_bias.new_zeros(batch, size)  # h_0
    deters, probs, indices, steps = [], [], [], []
    for t in range(length):
        deters.append(deter)
        pre = step_bias[t] if t == 0 else torch.addmm(step_bias[t], deter, from_deter_t)  # (B, 3D + hidden)
        gates, hidden = pre[:, : 3 * size], pre[:, 3 * size :]
        normed, mean, rstd = torch.native_layer_norm(hidden, hidden.shape[-1:], posterior_norm_weight,
                                                     posterior_norm_bias, constants.eps)  # (B, hidden)
        activated = F.silu(normed)
        logits = torch.addmm(posterior_bias, activated, posterior_t)  # (B, S*C)
        softmax = logits.view(batch, -1, classes).softmax(-1)  # (B, S, C)
        step_probs = softmax * (1.0 - constants.unimix) + constants.unimix / classes
        index = sample_index(step_probs, None if noise is None else noise[t])  # (B, S)
        probs.append(step_probs)
        indices.append(index)
        flat_index = index + constants.offsets  # (B, S): rows of W_z^T
        step = (hidden, normed, mean, rstd, activated, softmax, flat_index)
        if t < length - 1:  # h_T, after the last token, is not an output
            gates = gates + F.embedding_bag(flat_index, stoch_rows, mode="sum")  # + W_z z_t
            deter, gru_saved = gru_forward(gates, deter, gru_norm_weight, gru_norm_bias, constants.eps)
            step += gru_saved
        if keep:
            steps.append(step)
    return torch.stack(deters), torch.stack(probs), torch.stack(indices), steps if keep else None


class RSSMLoop(torch.autograd.Function):
    """The posterior loop of :meth:`wmlib.model.models.RSSM.observe` as one autograd node with a written-out
    backward (see the module's docstring).

    Step ``t``: ``[gates | posterior hidden] = W h_t + step_bias_t`` (the bias holds the embedding's share);
    posterior logits (LayerNorm, SiLU, Linear); unimix probabilities; the sample (``argmax(probs / noise)``); the
    GRU update from the gates plus the sample's rows of ``W_z``.  Values and every gradient equal the loop written
    with ordinary autograd (``tests/model/test_rssm_loop.py``).

    Inputs: ``step_bias`` ``(T, B, 3D + hidden)``; the weights of ``from_deter``, ``posterior_out`` and
    ``gru_from_stoch``; the posterior LayerNorm weight and bias; the posterior output bias; the GRU LayerNorm
    weight and bias; the ``Exp(1)`` noise ``(T, B, S, C)`` or ``None`` (mode); the constants.  Outputs, time-major:
    ``h_t`` ``(T, B, D)`` (``h_0 = 0``), the unimix posteriors ``(T, B, S, C)``, the sampled classes ``(T, B, S)``.
    """

    @staticmethod
    def forward(ctx, *inputs):
        deters, probs, indices, ctx.steps = posterior_loop(*inputs, keep=True)
        ctx.deters, ctx.inputs = deters, inputs  # attributes, not save_for_backward: nothing here changes in place
        ctx.mark_non_differentiable(indices)
        return deters, probs, indices

    @staticmethod
    def backward(ctx, grad_deters, grad_probs, _):
        (step_bias, from_deter_weight, posterior_weight, stoch_weight, posterior_norm_weight, posterior_norm_bias,
         _, gru_norm_weight, gru_norm_bias, _, constants) = ctx.inputs
        length, batch, _ = step_bias.shape
        size, unimix = stoch_weight.shape[0] // 3, constants.unimix
        grad_pre = step_bias.new_empty(step_bias.shape)  # (T, B, 3D + hidden): every step's; the bias's gradient
        grad_pre[-1, :, : 3 * size] = 0.0  # the last step has no GRU update
        grad_deters, grad_probs = grad_deters.contiguous(), grad_probs.contiguous()  # rows read per step
        grad_logits = step_bias.new_empty(length, batch, posterior_weight.shape[0])  # (T, B, S*C)
        grad_norms = [torch.zeros_like(p) for p in (posterior_norm_weight, posterior_norm_bias, gru_norm_weight,
                                                    gru_norm_bias)]
        grad_deter = None  # of h_{t+1}, flowing back from later steps
        for t in reversed(range(length)):
            hidden, normed, mean, rstd, activated, softmax, flat_index, *gru_saved = ctx.steps[t]
            grad_step_probs = grad_probs[t]  # (B, S, C)
            if t < length - 1:  # through the GRU update, from h_{t+1}'s gradient
                grad_from_gru, grad_weight, grad_bias = gru_backward(
                    grad_deter, gru_saved, gru_norm_weight, gru_norm_bias, grad_pre[t, :, : 3 * size])
                grad_norms[2] += grad_weight
                grad_norms[3] += grad_bias
                # the sample's gradient, straight through to its probabilities
                grad_step_probs = grad_step_probs + (grad_pre[t, :, : 3 * size] @ stoch_weight).view_as(softmax)
            grad_softmax = torch.ops.aten._softmax_backward_data(grad_step_probs * (1.0 - unimix), softmax, -1,
                                                                 softmax.dtype)
            grad_logits[t] = grad_softmax.flatten(1)
            grad_normed = torch.ops.aten.silu_backward(grad_logits[t] @ posterior_weight, normed)  # (B, hidden)
            grad_hidden, grad_weight, grad_bias = torch.ops.aten.native_layer_norm_backward(
                grad_normed, hidden, hidden.shape[-1:], mean, rstd, posterior_norm_weight, posterior_norm_bias,
                [True, True, True])
            grad_pre[t, :, 3 * size :] = grad_hidden
            grad_norms[0] += grad_weight
            grad_norms[1] += grad_bias
            if t > 0:  # h_0 is a constant
                grad_deter = torch.addmm(grad_deters[t], grad_pre[t], from_deter_weight)  # (B, D)
                if t < length - 1:
                    grad_deter += grad_from_gru
        # Weight gradients, one matmul each over all steps.
        rows = length * batch
        grad_from_deter = grad_pre.view(rows, -1).T @ ctx.deters.view(rows, -1)  # (3D + hidden, D)
        activated = torch.stack([step[4] for step in ctx.steps]).view(rows, -1)  # (T*B, hidden)
        grad_posterior = grad_logits.view(rows, -1).T @ activated  # (S*C, hidden)
        one_hot = grad_pre.new_zeros((length - 1) * batch, stoch_weight.shape[1])  # z_t for the steps with a GRU
        if length > 1:
            one_hot.scatter_(1, torch.cat([step[6] for step in ctx.steps[:-1]]), 1.0)
        grad_stoch = grad_pre[:-1, :, : 3 * size].reshape(-1, 3 * size).T @ one_hot  # (3D, S*C)
        return (grad_pre, grad_from_deter, grad_posterior, grad_stoch, grad_norms[0], grad_norms[1],
                grad_logits.sum((0, 1)), grad_norms[2], grad_norms[3], None, None)
