// A mistake in what the user gave (a flag, a file, a model that does not fit):
// the CLI prints its message alone, without a stack trace, and exits 1.
export class UserError extends Error {}
