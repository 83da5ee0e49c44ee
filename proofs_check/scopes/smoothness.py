"""Scope map of TIRER-SMOOTHER: RMS second derivative of MLP vs ResNet NTK interpolants over
activation, bias, alpha and depth."""
from __future__ import annotations

import math

from reskernels.theory import MLP, ResNet

from ..scope import Axis, scope_map


# --------------------------------------------------------------------------- Tirer: smoothness

@scope_map("TIRER-SMOOTHER", (
    Axis("activation", ("relu", "erf", "gelu", "tanh"), "relu", "activation of both networks",
         quick=("relu", "erf")),
    Axis("bias_var", (0.0, 0.5), 0.0, "bias variance on every layer", ordered=True),
    Axis("alpha", (0.1, 0.5, 1.0, 2.0), 1.0, "residual scaling (Tirer's model: weight_var=1)", quick=(0.1, 1.0, 2.0),
         ordered=True),
    Axis("depth", (2, 5, 10), 5, "number of blocks / layers", quick=(5,), ordered=True),
), "log10(RMS f'' of the MLP interpolant / RMS f'' of the ResNet interpolant); > 0 where the ResNet NTK "
   "interpolant is smoother",
   "the ResNet NTK interpolant of the toy target has smaller RMS second derivative than the MLP NTK's",
   "Tirer's toy: 0.5 cos x + sin 4x from 6 points on the circle, 4096-point grid, weight_var=1, input_var=1/2",
   check_over=("activation", "alpha", "bias_var"))
def tirer_smoother(at):
    from ..claims.tirer import toy_experiment
    kw = dict(weight_var=1.0, input_var=0.5, activation=at["activation"], bias_var=at["bias_var"])
    mlp = toy_experiment(MLP(at["depth"], **kw))
    res = toy_experiment(ResNet(at["depth"], at["alpha"], **kw))
    return (math.log10(mlp["rms_f2"] / res["rms_f2"]),
            {"RMS f'' ResNet": res["rms_f2"], "RMS f'' MLP": mlp["rms_f2"], "RMSE ResNet": res["rmse"]})
