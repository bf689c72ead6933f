/**
 * The {@code lora-lego} command line (picocli): {@link dev.loralego.cli.LoraLegoCommand} and its subcommands, e.g.
 * {@link dev.loralego.cli.MergeCommand} (offline merge of PEFT adapter directories) and
 * {@link dev.loralego.cli.SynthCommand} (synthetic adapters). Commands are thin: they parse options, call the
 * library, and print to the command line's {@code out}/{@code err} (so callers and tests can redirect them); a bad
 * option value is a usage error (exit code 2), a failure during execution prints {@code error: <message>} and exits 1.
 */
package dev.loralego.cli;
