// Tokens of the .gan language. Ordering rules for `allTokens`:
// - comments and whitespace first (skipped);
// - multi-character operators before their single-character prefixes
//   (`|>` before `|`..., `**` before `*`, `//` before `/`, `->` before `-`);
// - keywords before Identifier, each with `longer_alt: Identifier` so that
//   `params` or `stageX` lex as identifiers.
import { createToken, Lexer, type TokenType } from 'chevrotain';

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED });
// A lone CR ends a line too (old Mac files), so it ends a comment and a string.
export const LineComment = createToken({ name: 'LineComment', pattern: /\/\/[^\n\r]*/, group: Lexer.SKIPPED });
export const BlockComment = createToken({ name: 'BlockComment', pattern: /\/\*[\s\S]*?\*\//, group: Lexer.SKIPPED, line_breaks: true });

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/ });

// Every binary operator, so the parser reads `a op b op c ...` as one flat
// list and cst-to-ast applies precedence (a rule per precedence level would
// cost stack depth for every parenthesis).
export const BinaryOp = createToken({ name: 'BinaryOp', pattern: Lexer.NA });

const keyword = (word: string, categories: TokenType[] = []): TokenType =>
  createToken({ name: word[0].toUpperCase() + word.slice(1), pattern: new RegExp(`${word}\\b`), longer_alt: Identifier, categories });

export const Gan = keyword('gan');
export const Extends = keyword('extends');
export const Import = keyword('import');
export const Param = keyword('param');
export const Input = keyword('input');
export const Noise = keyword('noise');
export const Block = keyword('block');
export const Condition = keyword('condition');
export const Generator = keyword('generator');
export const Stage = keyword('stage');
export const From = keyword('from');
export const Discriminator = keyword('discriminator');
export const Head = keyword('head');
export const Loss = keyword('loss');
export const Objective = keyword('objective');
export const Train = keyword('train');
export const Preset = keyword('preset');
export const Encoder = keyword('encoder');
export const Weights = keyword('weights');
export const Repeat = keyword('repeat');
export const As = keyword('as');
export const If = keyword('if');
export const Else = keyword('else');
export const Return = keyword('return');
export const True = keyword('true');
export const False = keyword('false');
export const And = keyword('and', [BinaryOp]);
export const Or = keyword('or', [BinaryOp]);
export const Not = keyword('not');

export const NumberLiteral = createToken({ name: 'NumberLiteral', pattern: /(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?/ });
export const StringLiteral = createToken({ name: 'StringLiteral', pattern: /"(?:[^"\\\n\r]|\\.)*"/ });

export const Pipe = createToken({ name: 'Pipe', pattern: /\|>/ });
export const Arrow = createToken({ name: 'Arrow', pattern: /->/ });

// Operator families as categories, so the parser matches a family at once.
export const AddOp = createToken({ name: 'AddOp', pattern: Lexer.NA, categories: BinaryOp });
export const MulOp = createToken({ name: 'MulOp', pattern: Lexer.NA, categories: BinaryOp });
export const CmpOp = createToken({ name: 'CmpOp', pattern: Lexer.NA, categories: BinaryOp });
export const Pow = createToken({ name: 'Pow', pattern: /\*\*/, categories: BinaryOp });
export const Plus = createToken({ name: 'Plus', pattern: /\+/, categories: AddOp });
export const Minus = createToken({ name: 'Minus', pattern: /-/, categories: AddOp });
export const Star = createToken({ name: 'Star', pattern: /\*/, categories: MulOp });
// Integer (floor) division is the keyword `div`: `//` starts a comment.
export const Div = createToken({ name: 'Div', pattern: /div\b/, categories: MulOp, longer_alt: Identifier });
export const Slash = createToken({ name: 'Slash', pattern: /\//, categories: MulOp });
export const Percent = createToken({ name: 'Percent', pattern: /%/, categories: MulOp });
export const EqEq = createToken({ name: 'EqEq', pattern: /==/, categories: CmpOp });
export const NotEq = createToken({ name: 'NotEq', pattern: /!=/, categories: CmpOp });
export const LessEq = createToken({ name: 'LessEq', pattern: /<=/, categories: CmpOp });
export const GreaterEq = createToken({ name: 'GreaterEq', pattern: />=/, categories: CmpOp });
export const Less = createToken({ name: 'Less', pattern: /</, categories: CmpOp });
export const Greater = createToken({ name: 'Greater', pattern: />/, categories: CmpOp });

export const Equals = createToken({ name: 'Equals', pattern: /=/ });
export const LParen = createToken({ name: 'LParen', pattern: /\(/ });
export const RParen = createToken({ name: 'RParen', pattern: /\)/ });
export const LCurly = createToken({ name: 'LCurly', pattern: /\{/ });
export const RCurly = createToken({ name: 'RCurly', pattern: /\}/ });
export const LBracket = createToken({ name: 'LBracket', pattern: /\[/ });
export const RBracket = createToken({ name: 'RBracket', pattern: /\]/ });
export const Comma = createToken({ name: 'Comma', pattern: /,/ });
export const Colon = createToken({ name: 'Colon', pattern: /:/ });
export const Dot = createToken({ name: 'Dot', pattern: /\./ });
export const At = createToken({ name: 'At', pattern: /@/ });
export const Tilde = createToken({ name: 'Tilde', pattern: /~/ });

// A run of characters that start no token (a lone '!' or '|' included), as
// one token outside the parser's stream: chevrotain's own error recovery
// would try every token at every character, which takes seconds on a large
// binary-looking file. grammar/index.ts reports each run as GAN101.
export const UNEXPECTED_GROUP = 'unexpected';
export const Unexpected = createToken({ name: 'Unexpected', pattern: /(?:[^ \t\r\nA-Za-z0-9_"(){}[\],.:@~=<>!+\-*/%|]|!(?!=)|\|(?!>))+/, group: UNEXPECTED_GROUP });

export const keywords = [
  Gan, Extends, Import, Param, Input, Noise, Block, Condition, Generator, Stage, From, Discriminator, Head, Loss,
  Objective, Train, Preset, Encoder, Weights, Repeat, As, If, Else, Return, True, False, And, Or, Not,
];

export const allTokens: TokenType[] = [
  WhiteSpace,
  BlockComment, // before LineComment and Slash: `/*`
  LineComment, // before Slash: `//` starts a comment
  Div, // the keyword `div`, before Identifier
  ...keywords,
  Identifier,
  NumberLiteral,
  StringLiteral,
  Pipe, // before any `|`-prefixed token
  Arrow, // before Minus
  Pow, // before Star
  EqEq, NotEq, LessEq, GreaterEq, // before Equals, Less, Greater
  Plus, Minus, Star, Slash, Percent, Less, Greater,
  BinaryOp, AddOp, MulOp, CmpOp,
  Equals, LParen, RParen, LCurly, RCurly, LBracket, RBracket, Comma, Colon, Dot, At, Tilde,
  Unexpected, // last: it matches only what nothing else can start
];

export const GanLexer = new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: false });
