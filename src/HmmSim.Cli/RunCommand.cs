using System.CommandLine;
using System.Text.Json;
using HmmSim.Cli.Report;
using HmmSim.Cli.Scenarios;
using HmmSim.Cli.Workloads;
using Spectre.Console;

namespace HmmSim.Cli;

/// <summary>`hmmsim run`: the main job. With no file it runs the built-in seed scenario under both
/// device-private designs, side by side.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var run = new Command("run", $"Run a scenario file (docs/scenarios.md), or with no file the built-in scenario (the seeds' {SeedMachines.PhysicalAddressBits}-bit VM with a GPU-like device), under both device-private designs. Example: hmmsim run examples/selftest-migrate.json --json");
        var file = new Argument<string?>("scenario") { Description = "A scenario JSON file (docs/scenarios.md); without one, the built-in scenario.", Arity = ArgumentArity.ZeroOrOne };
        run.Arguments.Add(file);
        var quiet = new Option<bool>("--quiet") { Description = "Print only the verdict lines." };
        var json = new Option<bool>("--json") { Description = "Print JSON for scripts." };
        run.Options.Add(quiet);
        run.Options.Add(json);
        var report = new Option<string?>("--report") { Description = "Also write a self-contained HTML report (layouts, comparison table, charts) to this file (built-in scenario)." };
        run.Options.Add(report);
        run.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            return r.GetValue(file) is { } path
                ? ExecuteFile(path, r.GetValue(quiet), r.GetValue(json), output, error)
                : Execute(r.GetValue(quiet), r.GetValue(json), output, r.GetValue(report));
        });
        return run;
    }

    /// <summary>The console to draw tables on: the terminal's own, or a plain one over a redirected writer.</summary>
    public static IAnsiConsole Console(TextWriter output)
    {
        if (ReferenceEquals(output, System.Console.Out))
            return AnsiConsole.Console;
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No });
        console.Profile.Width = 160;
        return console;
    }

    /// <summary>`hmmsim run FILE`: 0 when every design meets every expectation, 1 when one does not
    /// (or the model hits a BUG), 2 when the file is bad.</summary>
    public static int ExecuteFile(string path, bool quiet, bool json, TextWriter output, TextWriter error)
    {
        Scenario scenario;
        try
        {
            scenario = ScenarioFile.Load(path);
        }
        catch (ScenarioFileException e)
        {
            ScenarioReport.WriteError(e, json, output, error);
            return 2;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A reader bug, not the user's: still one line, never a stack trace.
            ScenarioReport.WriteError(new ScenarioFileException(path, 0, 0, $"cannot read the scenario ({e.GetType().Name}: {e.Message})"), json, output, error);
            return 2;
        }
        var result = ScenarioRunner.Run(scenario);
        ScenarioReport.Write(result, quiet, json, output, error);
        return result.ExitCode;
    }

    private static int Execute(bool quiet, bool json, TextWriter output, string? reportPath = null)
    {
        var results = Progress.Run("running the seed scenario under both designs", json || quiet || !ReferenceEquals(output, System.Console.Out),
            () => Enum.GetValues<DevicePrivateDesign>().Select(SeedScenario.Run).ToList());
        if (reportPath is not null && !ReportWriter.TryWrite("run", reportPath, () => HtmlReport.ForRun(results)))
            return 2;
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(results.Select(r => new
            {
                design = r.Design.ToString(),
                deviceProbed = r.DeviceProbed,
                deviceStatus = r.DeviceStatus,
                pagesToDevice = r.PagesToDevice,
                thpsToDevice = r.ThpsToDevice,
                pagesToRam = r.PagesToRam,
                thpsToRam = r.ThpsToRam,
                deviceFaults = r.DeviceFaults,
                hmmRangeFaultPages = r.HmmRangeFaultPages,
                p2pAliasPages = r.P2pAliasPages,
                structPageBytesKernel = r.StructPageBytesKernel,
                structPageBytesModel = r.StructPageBytesModel,
                invariantChecks = r.InvariantChecks,
                dataVerified = r.DataVerified,
                verdict = r.Verdict,
            })));
        }
        else if (!quiet)
        {
            var console = Console(output);
            console.MarkupLine("[bold]The seeds' VM[/]: " + Markup.Escape(SeedMachines.Description));
            var table = new Table().AddColumn("").AddColumn(new TableColumn("today: PhysicalAddressSpace")).AddColumn(new TableColumn("redesign: DeviceAddressSpace"));
            void Row(string name, Func<SeedScenario.Result, string> f) => table.AddRow(Markup.Escape(name), Markup.Escape(f(results[0])), Markup.Escape(f(results[1])));
            Row("device", r => r.DeviceProbed ? "probed" : "absent");
            Row("why", r => r.DeviceStatus);
            Row("pages migrated to device (THPs)", r => $"{r.PagesToDevice:N0} ({r.ThpsToDevice})");
            Row("pages migrated to RAM (THPs)", r => $"{r.PagesToRam:N0} ({r.ThpsToRam})");
            Row("device faults (dmirror)", r => r.DeviceFaults.ToString("N0"));
            Row("pages mirrored by hmm_range_fault", r => r.HmmRangeFaultPages.ToString("N0"));
            Row("P2P alias pages", r => r.P2pAliasPages.ToString("N0"));
            Row("struct page, kernel", r => $"{r.StructPageBytesKernel >> 20:N0} MiB");
            Row("struct page, model", r => $"{r.StructPageBytesModel >> 10:N0} KiB");
            Row("invariant checks run", r => r.InvariantChecks.ToString("N0"));
            console.Write(table);
        }
        if (!json)
            foreach (var r in results)
                output.WriteLine($"{r.Design}: {r.Verdict}");
        // The scenario's point is that today's design cannot place the device; that is the expected outcome.
        bool expected = !results[0].DeviceProbed && results[1].DeviceProbed && results[1].DataVerified;
        return expected ? 0 : 1;
    }
}
