using System.CommandLine;
using System.Text.Json;
using HmmSim.Cli.Explore;
using HmmSim.Cli.Report;
using HmmSim.Cli.Scenarios;
using HmmSim.Cli.Workloads;
using Spectre.Console;

namespace HmmSim.Cli;

/// <summary>`hmmsim run`: the main job. With no file it runs the built-in seed scenario under both
/// device-private designs, side by side.</summary>
internal static class RunCommand
{
    private static readonly JsonSerializerOptions _json = new() { WriteIndented = true };

    public static Command Create()
    {
        var run = new Command("run", $"Run a scenario file (docs/scenarios.md), or with no file the built-in scenario on the seeds' VM ({SeedMachines.PhysicalAddressBits}-bit x86-64 whose PCI window covers the free physical space, with a GPU-like device), under both device-private designs. Example: hmmsim run examples/selftest-migrate.json --json");
        var file = new Argument<string?>("scenario") { Description = "A scenario JSON file (docs/scenarios.md); without one, the built-in scenario.", Arity = ArgumentArity.ZeroOrOne };
        // An option-like token is never a file name: "run --frob" is an unknown option.
        file.Validators.Add(r =>
        {
            if (r.Tokens.Count > 0 && r.Tokens[0].Value is { Length: > 1 } t && t[0] == '-')
                r.AddError($"'{t}' is not an option of hmmsim run{ParseErrors.Suggest(t, [.. run.Options.Where(o => !o.Hidden).Select(o => o.Name)])}");
        });
        run.Arguments.Add(file);
        var quiet = new Option<bool>("--quiet") { Description = "Print only the verdict lines." };
        var json = CliOptions.Json();
        var report = CliOptions.Report();
        var design = CliOptions.Design("both (a file's machine.designs when it names them)");
        design.DefaultValueFactory = _ => [];
        var set = MachineOverrides.Option();
        run.Options.Add(quiet);
        run.Options.Add(json);
        run.Options.Add(report);
        run.Options.Add(design);
        run.Options.Add(set);
        run.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            if (!MachineOverrides.TryParse(r.GetValue(set), out var overrides, out string bad))
            {
                error.WriteLine($"hmmsim run: {bad}");
                return 2;
            }
            var designs = r.GetValue(design) is { Length: > 0 } d ? d : overrides.Designs;
            var options = new Options(r.GetValue(quiet), r.GetValue(json), r.GetValue(report), designs, overrides);
            return r.GetValue(file) is { } path
                ? ExecuteFile(path, options, output, error)
                : Execute(options, output, error);
        });
        return run;
    }

    /// <summary>What `run` was asked for, beyond the file.</summary>
    public sealed record Options(bool Quiet, bool Json, string? Report, DevicePrivateDesign[]? Designs, MachineOverrides Overrides);

    /// <summary>The console to draw tables on (see <see cref="Terminal.Console"/>).</summary>
    public static IAnsiConsole Console(TextWriter output) => Terminal.Console(output);

    /// <summary>`hmmsim run FILE`: 0 when every design meets every expectation, 1 when one does not
    /// (or the model hits a BUG), 2 when the file is bad, 130 after Ctrl-C.</summary>
    public static int ExecuteFile(string path, bool quiet, bool json, TextWriter output, TextWriter error) =>
        ExecuteFile(path, new Options(quiet, json, null, null, new MachineOverrides()), output, error);

    public static int ExecuteFile(string path, Options options, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(options);
        Scenario scenario;
        try
        {
            scenario = ScenarioFile.Load(path);
        }
        catch (ScenarioFileException e)
        {
            ScenarioReport.WriteError(e, options.Json, output, error);
            return 2;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A reader bug, not the user's: still one line, never a stack trace.
            ScenarioReport.WriteError(new ScenarioFileException(path, 0, 0, $"cannot read the scenario ({e.GetType().Name}: {e.Message})"), options.Json, output, error);
            return 2;
        }
        var machine = scenario.Machine with { Overrides = options.Overrides, Designs = options.Designs ?? scenario.Machine.Designs };
        foreach (var d in machine.Designs)
        {
            if (MachineOverrides.Check(machine.ToConfig(d)) is { } problem)
            {
                error.WriteLine($"hmmsim run: {path}: with --set/--design: {problem}");
                return 2;
            }
        }
        scenario = scenario with { Machine = machine };
        var result = Progress.Run($"running {Path.GetFileName(path)}", options.Json || options.Quiet, output, () => ScenarioRunner.Run(scenario));
        if (options.Report is { } reportPath && !ReportWriter.TryWrite("run", reportPath, () => HtmlReport.ForScenario(result), error))
            return 2;
        ScenarioReport.Write(result, options.Quiet, options.Json, output, error);
        return result.ExitCode;
    }

    private static int Execute(Options options, TextWriter output, TextWriter error)
    {
        var designs = options.Designs ?? Enum.GetValues<DevicePrivateDesign>();
        var configs = designs.Select(d => options.Overrides.Apply(SeedMachines.Vm(d))).ToList();
        foreach (var c in configs)
        {
            if (MachineOverrides.Check(c) is { } problem)
            {
                error.WriteLine($"hmmsim run: with --set/--design: {problem}");
                return 2;
            }
        }
        var results = Progress.Run("running the seed scenario", options.Json || options.Quiet, output, () =>
        {
            var list = new List<SeedScenario.Result>();
            foreach (var c in configs)
            {
                if (Interrupt.Requested)
                    break;
                Progress.Tick?.Invoke(c.DevicePrivateDesign.ToString());
                list.Add(SeedScenario.Run(c));
            }
            return list;
        });
        bool interrupted = results.Count < configs.Count;
        string machine = options.Overrides.IsEmpty ? "the seeds' VM: " + SeedMachines.Description : "the seeds' VM with --set overrides: " + CliOptions.Describe(configs[0]);
        if (options.Report is { } reportPath && !ReportWriter.TryWrite("run", reportPath, () => HtmlReport.ForRun(results), error))
            return 2;
        // The point of the scenario is that today's design cannot place the device and the redesign can.
        bool expected = results.All(r => r.Design == DevicePrivateDesign.PhysicalAddressSpace ? !r.DeviceProbed : r.DeviceProbed && r.DataVerified);
        int exit = interrupted ? Interrupt.ExitCode : expected || !options.Overrides.IsEmpty ? 0 : 1;
        if (options.Json)
        {
            output.WriteLine(JsonSerializer.Serialize(new
            {
                file = (string?)null,
                scenario = "built-in",
                machine,
                passed = exit == 0,
                interrupted,
                exitCode = exit,
                designs = results.Select(r => new
                {
                    design = r.Design.ToString(),
                    passed = r.Design == DevicePrivateDesign.PhysicalAddressSpace ? !r.DeviceProbed || r.DataVerified : r.DataVerified,
                    verdict = r.Verdict,
                    pagesToDevice = r.PagesToDevice,
                    pagesToRam = r.PagesToRam,
                    invariantChecks = r.InvariantChecks,
                    deviceProbed = r.DeviceProbed,
                    deviceStatus = r.DeviceStatus,
                    thpsToDevice = r.ThpsToDevice,
                    thpsToRam = r.ThpsToRam,
                    deviceFaults = r.DeviceFaults,
                    hmmRangeFaultPages = r.HmmRangeFaultPages,
                    p2pAliasPages = r.P2pAliasPages,
                    structPageBytesKernel = r.StructPageBytesKernel,
                    structPageBytesModel = r.StructPageBytesModel,
                    dataVerified = r.DataVerified,
                }),
            }, _json));
            return exit;
        }
        if (!options.Quiet)
        {
            var console = Console(output);
            console.MarkupLine("[bold]Machine[/]: " + Markup.Escape(machine));
            var table = new Table().AddColumn(Terminal.LabelColumn(output));
            foreach (var r in results)
                table.AddColumn(Terminal.Column(CliOptions.Name(r.Design)));
            void Row(string name, Func<SeedScenario.Result, string> f) => table.AddRow([Markup.Escape(name), .. results.Select(r => Markup.Escape(f(r)))]);
            Row("device", r => r.DeviceProbed ? "probed" : "absent");
            Row("why", r => r.DeviceStatus);
            Row("4 KiB pages migrated to device (of them in THPs)", r => $"{r.PagesToDevice:N0} ({r.ThpsToDevice} THPs)");
            Row("4 KiB pages migrated to RAM (of them in THPs)", r => $"{r.PagesToRam:N0} ({r.ThpsToRam} THPs)");
            Row("device faults (dmirror)", r => r.DeviceFaults.ToString("N0"));
            Row("4 KiB pages mirrored by hmm_range_fault", r => r.HmmRangeFaultPages.ToString("N0"));
            Row("4 KiB pages read over the P2P alias", r => r.P2pAliasPages.ToString("N0"));
            Row("memory for struct pages, in the kernel", r => $"{r.StructPageBytesKernel >> 20:N0} MiB");
            Row("memory for struct pages, in the model", r => $"{r.StructPageBytesModel >> 10:N0} KiB");
            Row("invariant checks run (whole-machine audits)", r => r.InvariantChecks.ToString("N0"));
            console.Write(table);
        }
        foreach (var r in results)
            output.WriteLine($"{r.Design}: {r.Verdict}");
        if (interrupted)
            output.WriteLine($"interrupted (Ctrl-C): {results.Count} of {configs.Count} designs ran");
        else if (!options.Quiet)
            WriteBeyondThisRun(output);
        return exit;
    }

    /// <summary>The rest of the story in two lines: what replaying the review catches (the shipped
    /// reproducers of examples/findings, run now), and what the open proposals cost, computed from the
    /// same figures `hmmsim proposals` reports.</summary>
    private static void WriteBeyondThisRun(TextWriter output)
    {
        output.WriteLine(ReplayTheReview());
        const ulong pagesPerTiB = (1UL << 40) >> 12;
        ulong structPages = pagesPerTiB * ProposalFigures.StructPageBytes;
        ulong minimal = pagesPerTiB * (ulong)ProposalFigures.MinimalDescriptorBytes;
        var layouts = ProposalFigures.PageFlagsLayouts();
        var budget = ProposalFigures.IdentityBudgets()[0];
        output.WriteLine($"The open proposals, per TiB of device memory (hmmsim proposals; docs/proposals.md): struct pages take {structPages >> 30} GiB, "
            + $"the minimal descriptor {minimal >> 30} GiB ({ProposalFigures.MinimalDescriptorBytes} B per 4 KiB page); a zone of their own costs a page->flags bit "
            + $"in {layouts.Count(l => l.CostsABit)} of {layouts.Count} kernel configs; a (space, index) identity leaves {budget.SpaceBits} bits for "
            + $"{budget.MaxSpaces:N0} spaces of up to {budget.MaxBytesPerSpace >> 40:N0} TiB each on {budget.Arch}.");
    }

    /// <summary>Runs each reviewer finding's reproducer (embedded from examples/findings) and says which
    /// check caught the posted form; a reviewer variant without a reproducer is named as such.</summary>
    private static string ReplayTheReview()
    {
        var asm = typeof(RunCommand).Assembly;
        var names = asm.GetManifestResourceNames().Where(n => n.StartsWith("findings/", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        var caught = names.AsParallel().AsOrdered().Select(name =>
        {
            using var stream = asm.GetManifestResourceStream(name)!;
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var scenario = ScenarioFile.Parse(buffer.ToArray(), name);
            var variant = VariantSwitches.Describe(scenario.Machine.Variants);
            var failure = ScenarioRunner.Run(scenario).Designs.Select(d => d.Failure).FirstOrDefault(f => f is not null);
            return (Variant: variant, Text: failure is null ? $"{variant} not caught" : $"{variant} caught in {failure.Op} ({Shorten(failure.Message)})");
        }).ToList();
        var missing = VariantSwitches.ReviewerVariants.Where(v => !caught.Any(c => c.Variant == v)).ToList();
        return $"Replaying the review (hmmsim explore; examples/findings; docs/findings.md): {string.Join("; ", caught.Select(c => c.Text))}"
            + (missing.Count == 0 ? "." : $"; {string.Join(", ", missing)}: no sequence of test_hmm calls reaches it (docs/findings.md says why).");
    }

    private static string Shorten(string message)
    {
        var m = message;
        foreach (var prefix in new[] { "WARN_ON: ", "HmmSim: " })
            if (m.StartsWith(prefix, StringComparison.Ordinal))
                m = m[prefix.Length..];
        int colon = m.IndexOf(": ", StringComparison.Ordinal);
        var head = colon > 0 && colon < 90 ? m[..colon] : m;
        return head.Length > 90 ? head[..90] + "…" : head;
    }
}
