//! The Qwen3 chat template (ChatML), with thinking off: the assistant turn opens with an empty
//! `<think>` block, as Qwen3's own template writes it for `enable_thinking=False`.

use super::ChatMessage;

pub const IM_START: &str = "<|im_start|>";
pub const IM_END: &str = "<|im_end|>";
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// The prompt text for `messages`, ending where the assistant's answer begins.
pub fn render(messages: &[ChatMessage]) -> String {
    let mut s = String::new();
    for m in messages {
        s.push_str(IM_START);
        s.push_str(&m.role);
        s.push('\n');
        s.push_str(&m.content);
        s.push_str(IM_END);
        s.push('\n');
    }
    s.push_str(IM_START);
    s.push_str("assistant\n<think>\n\n</think>\n\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_is_off_and_turns_are_chatml() {
        let p = render(&[ChatMessage::system("你是编码员"), ChatMessage::user("问题")]);
        assert_eq!(
            p,
            "<|im_start|>system\n你是编码员<|im_end|>\n<|im_start|>user\n问题<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
        );
    }
}
