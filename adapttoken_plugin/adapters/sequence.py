"""Sequence helpers every model family shares: the text around the video and a sequence of kept tokens.

A video reaches the language model as a run of frame units (`VideoLayout`). Families differ in
what surrounds each unit's visual tokens: nothing (Qwen2/2.5-VL, LLaVA), a timestamp and
`<|vision_start|>` / `<|vision_end|>` (Qwen3-VL), or a frame label and `<img>` / `</img>` (InternVL).
`PromptParts` carries that text per unit, and `kept_sequence` lays out the sequence for any subset of
visual tokens the same way for every family: a unit with no kept token is dropped with its text, so
the sequence stays one the processor could have produced for the kept frames.

`SequenceHelpers` is a mixin of `ModelAdapter` (adapters/base.py): its methods read the adapter's
`video_token_id` and `trailing_video_tokens` and nothing else of the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import NoVideoError, UnsupportedInputError
from ..layout import VideoLayout


@dataclass
class PromptParts:
    """The text around the video: `prefix_ids` + <video> + `suffix_ids` (1-D LongTensors).

    The suffix (from the token that closes the video up to the answer position) holds the text
    queries whose attention ranks the visual tokens. Families with text inside the video give it per
    frame unit: unit u is `unit_heads[u]` + its visual tokens + `unit_tails[u]` (None: no such text).
    """

    prefix_ids: torch.Tensor
    suffix_ids: torch.Tensor
    unit_heads: list[torch.Tensor] | None = None
    unit_tails: list[torch.Tensor] | None = None


@dataclass
class KeptSequence:
    """A sequence holding only some visual tokens of the video (batch 1).

    Attributes:
        input_ids: (L,) prefix; per unit with kept tokens its head, one placeholder per kept token and
            its tail; the adapter's trailing video placeholders; suffix.
        full_index: (L,) index of each token in the full sequence (every token of every unit).
        visual_columns: (N,) columns of the ranked visual tokens (trailing placeholders excluded).
    """

    input_ids: torch.Tensor
    full_index: torch.Tensor
    visual_columns: torch.Tensor


class SequenceHelpers:
    """Sequence building shared by the families (a mixin of `ModelAdapter`)."""

    video_token_id: int = -1
    trailing_video_tokens: int = 0

    def unit_prompt(self, processor: Any, rendered: str, expansion: str, unit_placeholder: str) -> PromptParts:
        """Prompt parts with per-unit text for families whose processor writes text around each unit.

        `expansion` is what the processor's own `replace_video_token` writes for the video; the
        processor's video token in `rendered` is replaced by it, each unit's run of `unit_placeholder`
        is collapsed to one (placeholders are special tokens, so the text between them tokenizes the
        same), and the ids are split with `unit_text`, exactly as `split_inputs` splits the processor's
        output.
        """
        count = rendered.count(processor.video_token)
        if count != 1:
            raise NoVideoError(f"the chat template produced {count} video placeholders "
                               f"({processor.video_token!r}); expected exactly 1")
        collapsed = re.sub(f"(?:{re.escape(unit_placeholder)})+", lambda _: unit_placeholder, expansion)
        ids = self.tokenize(processor, rendered.replace(processor.video_token, collapsed))
        runs = self.placeholder_runs(ids)
        if len(runs) != collapsed.count(unit_placeholder) or bool(((runs[:, 1] - runs[:, 0]) != 1).any()):
            raise UnsupportedInputError("the rendered prompt holds visual placeholders outside the video")
        return self.unit_text(ids, runs)

    @staticmethod
    def tokenize(processor: Any, text: str) -> torch.Tensor:
        """(L,) token ids of an already rendered prompt (the template wrote the special tokens)."""
        return torch.tensor(processor.tokenizer(text, add_special_tokens=False)["input_ids"])

    def unit_starts(self, prompt: PromptParts, layout: VideoLayout, visual_extent: int) -> torch.Tensor:
        """(U + 1,) offset at which each unit's block starts in the full sequence (the last entry: where
        the units end), when a unit's visual tokens span `visual_extent` (tokens_per_unit for sequence
        indices; Qwen3-VL passes its position advance per unit)."""
        lengths = torch.full((layout.num_units,), visual_extent, dtype=torch.long)
        if prompt.unit_heads is not None:
            lengths += torch.tensor([len(h) + len(t) for h, t in zip(prompt.unit_heads, prompt.unit_tails)],
                                    dtype=torch.long)
        return len(prompt.prefix_ids) + torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])

    def kept_sequence(self, prompt: PromptParts, layout: VideoLayout, token_ids: torch.Tensor) -> KeptSequence:
        """Lay out prefix, the kept visual tokens `token_ids` (ascending) with their units' text, the
        trailing video placeholders and the suffix; see `KeptSequence`."""
        pad, dtype = self.video_token_id, prompt.prefix_ids.dtype
        n_pre, tpu = len(prompt.prefix_ids), layout.tokens_per_unit
        token_ids = token_ids.cpu()
        starts = self.unit_starts(prompt, layout, tpu)
        ids, index, columns = [prompt.prefix_ids], [torch.arange(n_pre)], []
        if prompt.unit_heads is None:
            ids.append(torch.full((len(token_ids),), pad, dtype=dtype))
            index.append(n_pre + token_ids)
            columns.append(torch.arange(n_pre, n_pre + len(token_ids)))
        else:
            units, counts = torch.unique_consecutive(layout.unit_of(token_ids), return_counts=True)
            column = n_pre
            for unit, cells in zip(units.tolist(), layout.cell_of(token_ids).split(counts.tolist())):
                head, tail, start = prompt.unit_heads[unit], prompt.unit_tails[unit], int(starts[unit])
                ids += [head, torch.full((len(cells),), pad, dtype=dtype), tail]
                index += [start + torch.arange(len(head)), start + len(head) + cells,
                          start + len(head) + tpu + torch.arange(len(tail))]
                columns.append(column + len(head) + torch.arange(len(cells)))
                column += len(head) + len(cells) + len(tail)
        end, trailing = int(starts[-1]), self.trailing_video_tokens
        ids += [torch.full((trailing,), pad, dtype=dtype), prompt.suffix_ids]
        index += [end + torch.arange(trailing), end + trailing + torch.arange(len(prompt.suffix_ids))]
        empty = torch.zeros(0, dtype=torch.long)
        return KeptSequence(torch.cat(ids), torch.cat(index), torch.cat(columns) if columns else empty)

    def check_single_prompt(self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The (L,) ids of a batch-1, unpadded prompt; raises UnsupportedInputError otherwise."""
        if input_ids is None:
            raise UnsupportedInputError("the selector stage needs input_ids (inputs_embeds alone is not supported)")
        if input_ids.ndim != 2 or input_ids.shape[0] != 1:
            raise UnsupportedInputError(f"the selector stage runs one prompt at a time; got input_ids of shape "
                                        f"{tuple(input_ids.shape)}")
        if attention_mask is not None and not bool(attention_mask.all()):
            raise UnsupportedInputError("padded prompts are not supported: pass one unpadded prompt")
        return input_ids[0].cpu()

    def placeholder_runs(self, ids: torch.Tensor) -> torch.Tensor:
        """(R, 2) [start, stop) of each run of `video_token_id` in `ids`; raises NoVideoError when none."""
        mask = (ids == self.video_token_id).to(torch.int8)
        edges = torch.diff(mask, prepend=mask.new_zeros(1), append=mask.new_zeros(1))
        runs = torch.stack([(edges == 1).nonzero().flatten(), (edges == -1).nonzero().flatten()], dim=1)
        if len(runs) == 0:
            raise NoVideoError(f"the prompt holds no video placeholder (token id {self.video_token_id}); "
                               "build it with the processor's chat template and a video entry")
        return runs

    def unit_text(self, ids: torch.Tensor, runs: torch.Tensor) -> PromptParts:
        """Split a prompt whose units are written `<head text> <opener> <visual tokens> <closer>`, one
        placeholder run per unit (Qwen3-VL: `<t seconds><|vision_start|> ... <|vision_end|>`; InternVL:
        `\\nFrame{i}: <img> ... </img>`), into prefix, per-unit heads and tails, and suffix.

        Unit u's tail is its closer; unit u > 0's head is everything after the previous closer through
        its own opener. Unit 0's head starts at the last occurrence of the token unit 1's head starts
        with (the timestamp's `<`, the label's newline) within as many tokens as unit 1's head has;
        with a single unit it is the opener alone (that unit is never dropped).

        Returns PromptParts with unit_heads / unit_tails. Raises UnsupportedInputError when the runs are
        not wrapped the same way or unit 0's head is not found.
        """
        starts, stops = runs[:, 0], runs[:, 1]
        if int(starts[0]) == 0 or int(stops[-1]) >= len(ids):
            raise UnsupportedInputError("every frame's visual tokens must be wrapped by an opening and a closing "
                                        "token, as the processor writes them")
        openers, closers = ids[starts - 1], ids[stops]
        if bool((openers != openers[0]).any()) or bool((closers != closers[0]).any()):
            raise UnsupportedInputError(
                f"every frame's visual tokens must be wrapped by the same tokens, as the processor writes them; "
                f"found openers {sorted(set(openers.tolist()))} and closers {sorted(set(closers.tolist()))}"
            )
        heads = [ids[int(stops[u - 1]) + 1:int(starts[u])] for u in range(1, len(runs))]
        first = int(starts[0]) - 1  # the opener of unit 0
        if heads and len(heads[0]) > 1:
            window_start = max(0, int(starts[0]) - len(heads[0]))
            hits = (ids[window_start:first] == heads[0][0]).nonzero().flatten()
            if len(hits) == 0:
                raise UnsupportedInputError(
                    f"cannot find where the first frame's text starts: expected token {int(heads[0][0])} (the "
                    f"first token of the second frame's text) within {len(heads[0])} tokens before the first frame"
                )
            first = window_start + int(hits[-1])
        heads.insert(0, ids[first:int(starts[0])])
        tails = [ids[int(s):int(s) + 1] for s in stops]
        return PromptParts(ids[:first], ids[int(stops[-1]) + 1:], heads, tails)
