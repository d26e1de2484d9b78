using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using HmmSim.Cli.Report;
using HmmSim.Selftests;

namespace HmmSim.Cli;

/// <summary>`hmmsim selftest`: the kernel's hmm-tests.c, ported, as kselftest-style TAP.</summary>
internal static class SelftestCommand
{
    public static Command Create()
    {
        var cmd = new Command("selftest", "Run the ported kernel HMM selftests (tools/testing/selftests/mm/hmm-tests.c) on the default machine (46-bit, 8 GiB) and print TAP. "
            + "Examples: hmmsim selftest; hmmsim selftest --design redesign --filter migrate");
        var design = CliOptions.Design("both");
        var filter = new Option<string?>("--filter") { Description = "Run only cases whose name contains this text, case-insensitive (e.g. hmm2, coherent, migrate_anon)." };
        var json = CliOptions.Json("Print one JSON object instead of TAP (with --list: the case names).");
        var list = new Option<bool>("--list") { Description = "List the case names and exit." };
        var report = CliOptions.Report();
        var set = MachineOverrides.Option();
        cmd.Options.Add(design);
        cmd.Options.Add(filter);
        cmd.Options.Add(json);
        cmd.Options.Add(list);
        cmd.Options.Add(report);
        cmd.Options.Add(set);
        cmd.SetAction(r =>
        {
            var error = r.InvocationConfiguration.Error;
            if (!MachineOverrides.TryParse(r.GetValue(set), out var overrides, out string bad))
            {
                error.WriteLine($"hmmsim selftest: {bad}");
                return 2;
            }
            var designs = overrides.Designs ?? r.GetValue(design)!;
            return Run(designs, r.GetValue(filter), r.GetValue(json), r.GetValue(list), r.GetValue(report), overrides, r.InvocationConfiguration.Output, error);
        });
        return cmd;
    }

    private static int Run(DevicePrivateDesign[] designs, string? filter, bool json, bool list, string? reportPath, MachineOverrides overrides, TextWriter output, TextWriter error)
    {
        var cases = SelftestCatalog.All
            .Where(c => designs.Contains(c.Design) && (filter is null || c.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)))
            .ToList();
        if (cases.Count == 0)
        {
            error.WriteLine($"hmmsim selftest: no case matches --filter '{filter}'");
            return 2;
        }
        if (list)
        {
            if (json)
                output.WriteLine(JsonSerializer.Serialize(new { total = cases.Count, cases = cases.Select(c => new { name = c.Name, design = c.Design.ToString() }) }));
            else
                foreach (var c in cases)
                    output.WriteLine(c.Name);
            return 0;
        }
        var machine = overrides.Apply(new MachineConfig());
        foreach (var d in designs)
        {
            if (MachineOverrides.Check(machine with { DevicePrivateDesign = d }) is { } problem)
            {
                error.WriteLine($"hmmsim selftest: with --set: {problem}");
                return 2;
            }
        }
        string machineText = CliOptions.Describe(machine);
        var results = new List<(SelftestCase Case, string? Error)>();
        if (!json)
        {
            output.WriteLine("TAP version 13");
            output.WriteLine($"# machine: {machineText}");
            output.WriteLine($"1..{cases.Count}");
        }
        SelftestCatalog.ConfigureMachine = overrides.IsEmpty ? null : overrides.Apply;
        try
        {
            Progress.Run($"{cases.Count} selftests", json, output, () =>
            {
                for (int i = 0; i < cases.Count && !Interrupt.Requested; i++)
                {
                    var c = cases[i];
                    Progress.Tick?.Invoke($"{i + 1}/{cases.Count} {c.Name}");
                    string? failure = null;
                    try
                    {
                        c.Run();
                    }
                    catch (Exception e)
                    {
                        failure = $"{e.GetType().Name}: {e.Message}";
                    }
                    results.Add((c, failure));
                    if (json)
                        continue;
                    output.WriteLine($"{(failure is null ? "ok" : "not ok")} {i + 1} {c.Name}");
                    if (failure is not null)
                        foreach (var line in failure.Split('\n'))
                            output.WriteLine($"# {line.TrimEnd()}");
                    output.Flush();
                }
                return 0;
            });
        }
        finally
        {
            SelftestCatalog.ConfigureMachine = null;
        }
        int fail = results.Count(r => r.Error is not null);
        bool interrupted = results.Count < cases.Count;
        if (reportPath is not null && !ReportWriter.TryWrite("selftest", reportPath, () => HtmlReport.ForTable($"hmmsim selftest — {results.Count - fail} of {results.Count} passed", "machine: " + machineText + "; host: " + HostInfo.Describe(),
                ["case", "result", "error"], [.. results.Select(r => (IReadOnlyList<string>)[r.Case.Name, r.Error is null ? "ok" : "FAIL", r.Error ?? ""])]), error))
            return 2;
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new
            {
                machine = machineText,
                total = cases.Count,
                run = results.Count,
                pass = results.Count - fail,
                fail,
                interrupted,
                cases = results.Select(r => new { name = r.Case.Name, ok = r.Error is null, error = r.Error }),
            }));
        }
        else
        {
            if (interrupted)
                output.WriteLine($"# interrupted (Ctrl-C) after {results.Count.ToString(CultureInfo.InvariantCulture)} of {cases.Count} cases");
            output.WriteLine($"# Totals: pass:{results.Count - fail} fail:{fail} xfail:0 xpass:0 skip:{cases.Count - results.Count} error:0");
        }
        return interrupted ? Interrupt.ExitCode : fail == 0 ? 0 : 1;
    }
}
