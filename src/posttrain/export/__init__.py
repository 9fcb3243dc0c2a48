"""Export a trained model for others: a merged model folder or a PEFT adapter, the chat template of
the renderer it trained with, and an optional upload to the Hugging Face Hub."""

from posttrain.export.chat_templates import ChatTemplate, chat_template_for
from posttrain.export.folder import DTYPES, ExportResult, export
from posttrain.export.hub import push_to_hub

__all__ = ["DTYPES", "ChatTemplate", "ExportResult", "chat_template_for", "export", "push_to_hub"]
