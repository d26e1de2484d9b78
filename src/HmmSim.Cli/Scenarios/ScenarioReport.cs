using System.Text.Json;
using Spectre.Console;

namespace HmmSim.Cli.Scenarios;

/// <summary>How `hmmsim run FILE` shows a result: a per-design table and verdict lines, the verdicts
/// alone (--quiet), or JSON (--json).</summary>
internal static class ScenarioReport
{
    private static readonly JsonSerializerOptions _json = new() { WriteIndented = true };

    public static void Write(ScenarioResult result, bool quiet, bool json, TextWriter output, TextWriter error)
    {
        var s = result.Scenario;
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new
            {
                file = s.File,
                scenario = s.Name,
                machine = CliOptions.Describe(s.Machine.ToConfig(s.Machine.Designs[0])),
                passed = result.Passed,
                interrupted = result.Interrupted,
                exitCode = result.ExitCode,
                designs = result.Designs.Select(d => new
                {
                    design = d.Design.ToString(),
                    passed = d.Passed,
                    stepsRun = d.StepsRun,
                    expectationsMet = d.ExpectationsMet,
                    pagesToDevice = d.PagesToDevice,
                    pagesToRam = d.PagesToRam,
                    invariantChecks = d.InvariantChecks,
                    stoppedAt = d.StoppedAt,
                    elapsedMs = Math.Round(d.Elapsed.TotalMilliseconds, 1),
                    verdict = d.Verdict,
                    failure = d.Failure is { } f ? new { step = f.Step, op = f.Op, line = f.Line, kind = f.Kind, expected = f.Expected, actual = f.Actual, message = f.Message } : null,
                    dumps = d.Dumps.Select(u => new
                    {
                        step = u.Step,
                        line = u.Line,
                        at = u.At,
                        address = Hex(u.Address),
                        pages = u.Entries.Select(e => new
                        {
                            address = Hex(e.Address),
                            level = e.Level,
                            kind = e.Kind,
                            swapType = e.SwapType,
                            pfn = e.Pfn is { } pfn ? Hex(pfn) : null,
                            devicePrivateOffset = e.DevicePrivateOffset is { } off ? Hex(off) : null,
                            flags = e.Flags,
                            entry = Hex(e.Raw),
                        }),
                    }),
                }),
            }, _json));
        }
        else
        {
            if (!quiet)
            {
                var console = RunCommand.Console(output);
                console.MarkupLine($"[bold]{Markup.Escape(s.Name)}[/] ({Markup.Escape(s.File)})" + (s.Description is { } desc ? ": " + Markup.Escape(desc) : ""));
                console.MarkupLine("[bold]Machine[/]: " + Markup.Escape(CliOptions.Describe(s.Machine.ToConfig(s.Machine.Designs[0]))));
                var table = new Table().AddColumn(Terminal.LabelColumn(output));
                foreach (var d in result.Designs)
                    table.AddColumn(Terminal.Column(CliOptions.Name(d.Design), right: true));
                void Row(string name, Func<DesignResult, string> f) => table.AddRow([Markup.Escape(name), .. result.Designs.Select(d => Markup.Escape(f(d)))]);
                Row("steps run", d => d.StepsRun.ToString("N0"));
                Row("expectations met", d => d.ExpectationsMet.ToString("N0"));
                Row("pages migrated to device", d => d.PagesToDevice.ToString("N0"));
                Row("pages migrated to RAM", d => d.PagesToRam.ToString("N0"));
                Row("invariant checks", d => d.InvariantChecks.ToString("N0"));
                Row("time (after an untimed warm-up)", d => $"{d.Elapsed.TotalMilliseconds:N0} ms");
                Row("result", d => d.Passed ? d.StoppedAt is null ? "pass" : "pass (stopped as expected)" : "FAIL");
                console.Write(table);
                WriteDumps(result, output);
            }
            foreach (var d in result.Designs)
                output.WriteLine($"{d.Design}: {d.Verdict}");
            if (result.Interrupted)
                output.WriteLine($"interrupted (Ctrl-C): {result.Designs.Count} of {s.Machine.Designs.Count} designs ran; partial summary above");
        }
        foreach (var d in result.Designs)
            if (d.Failure is { } f && f.Kind != "interrupted")
                error.WriteLine($"hmmsim run: {s.File}: {d.Design}: {f}");
    }

    private static string Hex(ulong v) => $"0x{v:x}";

    /// <summary>Each "dump" step's pages, design by design: address, offset in the mapping as the
    /// step wrote it, and the entry decoded.</summary>
    private static void WriteDumps(ScenarioResult result, TextWriter output)
    {
        foreach (var d in result.Designs)
        {
            foreach (var dump in d.Dumps)
            {
                output.WriteLine($"dump at step {dump.Step} (line {dump.Line}), {dump.At}, {dump.Entries.Count} pages, {d.Design}:");
                foreach (var e in dump.Entries)
                {
                    ulong off = e.Address - dump.Address;
                    string label = off == 0 ? dump.At : $"{dump.At}+0x{off:x}";
                    output.WriteLine($"  0x{e.Address:x12}  {label,-14} {e}");
                }
            }
        }
    }

    public static void WriteError(ScenarioFileException e, bool json, TextWriter output, TextWriter error)
    {
        error.WriteLine($"hmmsim run: {e.Message}");
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new
            {
                file = e.File,
                passed = false,
                exitCode = 2,
                error = new { line = e.Line, column = e.Column, message = e.Problem },
            }, _json));
        }
    }
}
