// The .gan grammar as a pure chevrotain CstParser: no embedded actions; the
// CST is turned into the AST in cst-to-ast.ts. Error recovery is on, so one
// run reports several syntax errors and still yields a (partial) tree.
import { CstParser, type CstNode } from 'chevrotain';
import * as T from './tokens.ts';

export class GanParser extends CstParser {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3, nodeLocationTracking: 'onlyOffset' });
    this.performSelfAnalysis();
  }

  file = this.RULE('file', () => {
    this.OPTION(() => this.SUBRULE(this.header));
    this.MANY(() => this.SUBRULE(this.topDecl));
  });

  header = this.RULE('header', () => {
    this.CONSUME(T.Gan);
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Extends);
      this.CONSUME(T.StringLiteral);
    });
  });

  topDecl = this.RULE('topDecl', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.importDecl) },
      { ALT: () => this.SUBRULE(this.paramDecl) },
      { ALT: () => this.SUBRULE(this.inputDecl) },
      { ALT: () => this.SUBRULE(this.noiseDecl) },
      { ALT: () => this.SUBRULE(this.blockDecl) },
      { ALT: () => this.SUBRULE(this.conditionDecl) },
      { ALT: () => this.SUBRULE(this.generatorDecl) },
      { ALT: () => this.SUBRULE(this.discriminatorDecl) },
      { ALT: () => this.SUBRULE(this.settingsDecl) },
      { ALT: () => this.SUBRULE(this.presetDecl) },
      { ALT: () => this.SUBRULE(this.encoderDecl) },
      { ALT: () => this.SUBRULE(this.weightsDecl) },
    ]);
  });

  /** `encoder name(input: [dims], ...) { body }`: a network used frozen, its result the body's `return`. */
  encoderDecl = this.RULE('encoderDecl', () => {
    this.CONSUME(T.Encoder);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.encoderInput) });
    this.CONSUME(T.RParen);
    this.SUBRULE(this.body);
  });

  encoderInput = this.RULE('encoderInput', () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.listExpr);
  });

  /** `weights name { "checkpoint.name" = "layer/path" ... }`: how a published checkpoint's tensors map onto an encoder. */
  weightsDecl = this.RULE('weightsDecl', () => {
    this.CONSUME(T.Weights);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.weightRule));
    this.CONSUME(T.RCurly);
  });

  weightRule = this.RULE('weightRule', () => {
    this.CONSUME(T.StringLiteral);
    this.CONSUME(T.Equals);
    this.CONSUME2(T.StringLiteral);
  });

  importDecl = this.RULE('importDecl', () => {
    this.CONSUME(T.Import);
    this.CONSUME(T.StringLiteral);
  });

  paramDecl = this.RULE('paramDecl', () => {
    this.CONSUME(T.Param);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  inputDecl = this.RULE('inputDecl', () => {
    this.CONSUME(T.Input);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.listExpr);
  });

  noiseDecl = this.RULE('noiseDecl', () => {
    this.CONSUME(T.Noise);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.listExpr);
    this.CONSUME(T.Tilde);
    this.CONSUME2(T.Identifier);
  });

  blockDecl = this.RULE('blockDecl', () => {
    this.CONSUME(T.Block);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.blockParam) });
    this.CONSUME(T.RParen);
    this.SUBRULE(this.body);
  });

  blockParam = this.RULE('blockParam', () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expr);
    });
  });

  conditionDecl = this.RULE('conditionDecl', () => {
    this.CONSUME(T.Condition);
    this.CONSUME(T.Identifier);
    this.SUBRULE(this.body);
  });

  generatorDecl = this.RULE('generatorDecl', () => {
    this.CONSUME(T.Generator);
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.stageDecl));
    this.CONSUME(T.RCurly);
  });

  stageDecl = this.RULE('stageDecl', () => {
    this.CONSUME(T.Stage);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.At);
    this.SUBRULE(this.expr);
    this.OPTION(() => {
      this.CONSUME(T.From);
      this.CONSUME2(T.Identifier);
    });
    this.SUBRULE(this.body);
  });

  discriminatorDecl = this.RULE('discriminatorDecl', () => {
    this.CONSUME(T.Discriminator);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.At);
    this.SUBRULE(this.expr);
    this.SUBRULE(this.body);
  });

  settingsDecl = this.RULE('settingsDecl', () => {
    this.OR([{ ALT: () => this.CONSUME(T.Objective) }, { ALT: () => this.CONSUME(T.Train) }]);
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.setting));
    this.CONSUME(T.RCurly);
  });

  setting = this.RULE('setting', () => {
    this.CONSUME(T.Identifier);
    this.MANY(() => {
      this.CONSUME(T.Dot);
      this.CONSUME2(T.Identifier);
    });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  presetDecl = this.RULE('presetDecl', () => {
    this.CONSUME(T.Preset);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LCurly);
    this.MANY(() => this.OR([{ ALT: () => this.SUBRULE(this.paramDecl) }, { ALT: () => this.SUBRULE(this.settingsDecl) }]));
    this.CONSUME(T.RCurly);
  });

  body = this.RULE('body', () => {
    this.CONSUME(T.LCurly);
    this.MANY(() => this.SUBRULE(this.statement));
    this.CONSUME(T.RCurly);
  });

  statement = this.RULE('statement', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.repeatStmt) },
      { ALT: () => this.SUBRULE(this.ifStmt) },
      { ALT: () => this.SUBRULE(this.lossStmt) },
      { ALT: () => this.SUBRULE(this.headStmt) },
      { ALT: () => this.SUBRULE(this.returnStmt) },
      {
        GATE: () => this.LA(1).tokenType === T.Identifier && (this.LA(2).tokenType === T.Equals || this.LA(2).tokenType === T.Comma),
        ALT: () => this.SUBRULE(this.assignStmt),
      },
      { ALT: () => this.SUBRULE(this.exprStmt) },
    ]);
  });

  assignStmt = this.RULE('assignStmt', () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.Identifier) });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  exprStmt = this.RULE('exprStmt', () => {
    this.SUBRULE(this.expr);
  });

  repeatStmt = this.RULE('repeatStmt', () => {
    this.CONSUME(T.Repeat);
    this.SUBRULE(this.expr);
    this.OPTION(() => {
      this.CONSUME(T.As);
      this.CONSUME(T.Identifier);
    });
    this.SUBRULE(this.body);
  });

  /** `if c { } else if d { } ... else { }`: a loop, so a long chain costs no parser stack. */
  ifStmt = this.RULE('ifStmt', () => {
    this.CONSUME(T.If);
    this.SUBRULE(this.expr);
    this.SUBRULE(this.body);
    this.MANY(() => {
      this.CONSUME(T.Else);
      this.CONSUME2(T.If);
      this.SUBRULE2(this.expr);
      this.SUBRULE2(this.body);
    });
    this.OPTION(() => {
      this.CONSUME2(T.Else);
      this.SUBRULE3(this.body);
    });
  });

  lossStmt = this.RULE('lossStmt', () => {
    this.CONSUME(T.Loss);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  headStmt = this.RULE('headStmt', () => {
    this.CONSUME(T.Head);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  returnStmt = this.RULE('returnStmt', () => {
    this.CONSUME(T.Return);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expr) });
  });

  // ---- expressions ----
  // Operators are read as one flat list, `operand (op operand)* (|> target)*`;
  // cst-to-ast applies precedence. So the only parser recursion is through
  // brackets, which grammar/nesting.ts bounds before parsing.
  expr = this.RULE('expr', () => {
    this.SUBRULE(this.operand);
    this.MANY(() => {
      this.CONSUME(T.BinaryOp);
      this.SUBRULE2(this.operand);
    });
    this.MANY2(() => {
      this.CONSUME(T.Pipe);
      this.SUBRULE(this.pipeTarget);
    });
  });

  /** `f`, `f(args)` or `Block(args)` after `|>`: the piped value becomes the first argument. */
  pipeTarget = this.RULE('pipeTarget', () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.callArgs());
  });

  /** Prefix operators, a primary, then `.name` member reads. */
  operand = this.RULE('operand', () => {
    this.MANY(() => this.OR([{ ALT: () => this.CONSUME(T.Minus) }, { ALT: () => this.CONSUME(T.Not) }]));
    this.OR2([
      { ALT: () => this.CONSUME(T.NumberLiteral) },
      { ALT: () => this.CONSUME(T.StringLiteral) },
      { ALT: () => this.CONSUME(T.True) },
      { ALT: () => this.CONSUME(T.False) },
      { ALT: () => this.SUBRULE(this.callOrName) },
      { ALT: () => this.SUBRULE(this.parenExpr) },
      { ALT: () => this.SUBRULE(this.listExpr) },
    ]);
    this.MANY2(() => {
      this.CONSUME(T.Dot);
      this.CONSUME(T.Identifier);
    });
  });

  callOrName = this.RULE('callOrName', () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.callArgs());
  });

  /** `(e)` is grouping; `(a, b)` is a tuple. */
  parenExpr = this.RULE('parenExpr', () => {
    this.CONSUME(T.LParen);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expr) });
    this.CONSUME(T.RParen);
  });

  listExpr = this.RULE('listExpr', () => {
    this.CONSUME(T.LBracket);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expr) });
    this.CONSUME(T.RBracket);
  });

  /**
   * `(a, k = b, ...)`, read inside the calling rule (not a rule of its own:
   * each rule level costs parser stack for every nested call). An argument
   * is an optional `name =` and an expression; cst-to-ast pairs them by position.
   */
  private callArgs(): void {
    this.CONSUME(T.LParen);
    this.MANY_SEP({
      SEP: T.Comma,
      DEF: () => {
        this.OPTION2({
          GATE: () => this.LA(2).tokenType === T.Equals,
          DEF: () => {
            this.CONSUME2(T.Identifier);
            this.CONSUME(T.Equals);
          },
        });
        this.SUBRULE(this.expr);
      },
    });
    this.CONSUME(T.RParen);
  }
}

/** One parser instance serves every file (chevrotain parsers are reusable). */
export const parser = new GanParser();

export type { CstNode };
