"""Floor a broken keypoint pipeline cannot pass: the RGB teacher, then the distilled thermal
student, trained on two synthetic subjects of a tiny corpus (running and TUG clips), scores a
higher AP on the held-out third subject than a constant pose (the mean labelled training
heatmap in every detection window; :class:`irtrepro.keypoints.models.ConstantPose`).

The constant pose is a strong floor on these crops: the window follows the detected person and
runners seen from behind look alike (running-frame AP ~0.75). It scores every frame alike, so
its misses on TUG frames rank among its hits; a working student both places the joints and
knows on which frames it is unsure."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from irtrepro.keypoints import train as kp  # noqa: E402
from irtrepro.keypoints.models import ConstantPose  # noqa: E402
from irtrepro.synth.pose_corpus import make_corpus  # noqa: E402

pytestmark = pytest.mark.requires_torch
#: AP the student must clear above the constant pose
MARGIN = 0.05
CFG = kp.KeypointConfig(n_subjects=3, frames_per_subject=90, teacher_epochs=80, max_epochs=12,
                        latent_ch=32, deconv_ch=32)


@pytest.fixture(scope="module")
def fold():
    corpus = make_corpus(CFG, progress=False)
    held = sorted(set(corpus.subject))[-1]
    labelled = np.random.default_rng(0).random(len(corpus)) < 0.6
    torch.manual_seed(0)
    out = kp._run_fold(0, [held], corpus, labelled, CFG, ("mobilenetv3",), False, (), True,
                       False)
    return corpus, held, labelled, out


def test_student_beats_the_constant_pose_on_a_held_out_subject(fold):
    corpus, held, labelled, out = fold
    ap = {r["model"].split(" (")[0]: r["AP"] for r in out["rows"]}
    floor = ap["constant pose"]
    assert 0.2 < floor < 0.7          # the floor is measured, and is neither trivial nor perfect
    assert ap["student mobilenetv3"] > floor + MARGIN, ap
    # the floor rejects a constant network: the student's own decoder fed a constant latent
    test = np.flatnonzero(corpus.subject == held)
    student = out["models"]["student mobilenetv3"]

    class ConstantLatent(torch.nn.Module):
        def forward(self, x):
            z = torch.zeros(len(x), CFG.latent_ch, CFG.crop_hw[0] // 16, CFG.crop_hw[1] // 16)
            return z, student.decoder(z)

    assert kp.evaluate_crops(ConstantLatent().eval(), corpus, test, CFG)["AP"] < floor + MARGIN


def test_constant_pose_outputs_the_mean_training_heatmap(fold):
    corpus, held, labelled, _ = fold
    train = np.flatnonzero((corpus.subject != held) & corpus.detected & labelled)
    tg, _ = kp.heatmap_targets(corpus, train, CFG)
    model = ConstantPose(torch.from_numpy(tg))
    _, hm = model(torch.zeros(3, 1, *CFG.crop_hw))
    assert hm.shape == (3, 17, *CFG.hm_hw)
    np.testing.assert_allclose(hm[2].numpy(), tg.mean(0), rtol=1e-5, atol=1e-6)
