"""posttrain: a post-training data pipeline for chat LLMs."""

from posttrain.datum import datum_from_tokens_weights
from posttrain.errors import (
    InputError,
    MessageError,
    NothingToTrainError,
    PosttrainError,
    RendererError,
    TokenizerNotAvailableError,
)
from posttrain.messages import Message, TextPart, ThinkingPart, ToolCall, to_messages
from posttrain.renderers import Renderer, SupervisedExample, get_renderer, renderer_names
from posttrain.tokenizer import Tokenizer, get_tokenizer
from posttrain.train_on_what import TrainOnWhat
from posttrain.types import Datum

__version__ = "0.1.0"

__all__ = [
    "Datum",
    "InputError",
    "Message",
    "MessageError",
    "NothingToTrainError",
    "PosttrainError",
    "Renderer",
    "RendererError",
    "SupervisedExample",
    "TextPart",
    "ThinkingPart",
    "TokenizerNotAvailableError",
    "ToolCall",
    "TrainOnWhat",
    "Tokenizer",
    "datum_from_tokens_weights",
    "get_renderer",
    "get_tokenizer",
    "renderer_names",
    "to_messages",
]
