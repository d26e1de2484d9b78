using System.CommandLine;
using System.Text.Json;
using HmmSim.Selftests;

namespace HmmSim.Cli;

/// <summary>`hmmsim selftest`: the kernel's hmm-tests.c, ported, as kselftest-style TAP.</summary>
internal static class SelftestCommand
{
    public static Command Create()
    {
        var cmd = new Command("selftest", "Run the ported kernel HMM selftests (tools/testing/selftests/mm/hmm-tests.c) and print TAP. "
            + "Examples: hmmsim selftest; hmmsim selftest --design DeviceAddressSpace --filter migrate");
        var design = new Option<string>("--design") { Description = "PhysicalAddressSpace, DeviceAddressSpace or both.", DefaultValueFactory = _ => "both" };
        var filter = new Option<string?>("--filter") { Description = "Run only cases whose name contains this text (e.g. hmm2, coherent, migrate_anon)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of TAP." };
        var list = new Option<bool>("--list") { Description = "List the case names and exit." };
        cmd.Options.Add(design);
        cmd.Options.Add(filter);
        cmd.Options.Add(json);
        cmd.Options.Add(list);
        cmd.SetAction(r => Run(r.GetValue(design)!, r.GetValue(filter), r.GetValue(json), r.GetValue(list), r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
        return cmd;
    }

    private static int Run(string design, string? filter, bool json, bool list, TextWriter output, TextWriter error)
    {
        DevicePrivateDesign[] designs;
        if (design.Equals("both", StringComparison.OrdinalIgnoreCase))
            designs = Enum.GetValues<DevicePrivateDesign>();
        else if (Enum.TryParse<DevicePrivateDesign>(design, ignoreCase: true, out var d) && Enum.IsDefined(d))
            designs = [d];
        else
        {
            error.WriteLine($"hmmsim selftest: unknown design '{design}' (PhysicalAddressSpace, DeviceAddressSpace or both)");
            return 2;
        }
        var cases = SelftestCatalog.All
            .Where(c => designs.Contains(c.Design) && (filter is null || c.Name.Contains(filter, StringComparison.Ordinal)))
            .ToList();
        if (cases.Count == 0)
        {
            error.WriteLine($"hmmsim selftest: no case matches --filter '{filter}'");
            return 2;
        }
        if (list)
        {
            foreach (var c in cases)
                output.WriteLine(c.Name);
            return 0;
        }
        var results = new List<(SelftestCase Case, string? Error)>();
        if (!json)
        {
            output.WriteLine("TAP version 13");
            output.WriteLine($"1..{cases.Count}");
        }
        for (int i = 0; i < cases.Count; i++)
        {
            var c = cases[i];
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
        }
        int fail = results.Count(r => r.Error is not null);
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new
            {
                total = results.Count,
                pass = results.Count - fail,
                fail,
                cases = results.Select(r => new { name = r.Case.Name, ok = r.Error is null, error = r.Error }),
            }));
        }
        else
        {
            output.WriteLine($"# Totals: pass:{results.Count - fail} fail:{fail} xfail:0 xpass:0 skip:0 error:0");
        }
        return fail == 0 ? 0 : 1;
    }
}
