//! Placeholder while the strategy is written.
use super::{Ctx, Request, Strategy};
#[derive(Debug, Default)]
pub struct Cas { _todo: () }
impl Strategy for Cas {
    fn on_add(&mut self, ctx: &mut Ctx<'_>, req: Request, _delta: u64) {
        ctx.reply_error(&req, crate::ErrorCode::NOT_SUPPORTED, "not yet");
    }
    fn on_read(&mut self, ctx: &mut Ctx<'_>, req: Request) {
        ctx.reply_error(&req, crate::ErrorCode::NOT_SUPPORTED, "not yet");
    }
}
