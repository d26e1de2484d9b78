using System.Reflection;
using System.Text.Json;
using HmmSim.Cli.Scenarios;
using HmmSim.Cli.Workloads;
using HmmSim.Selftests;

namespace HmmSim.Cli.Explore;

/// <summary>One unit of work: a check family under one variant and design (and, for the randomized
/// family, one seed). Work items are numbered in a fixed order, so a shard is a fixed slice.</summary>
internal sealed record WorkItem(int Index, string Variant, DesignVariants Variants, DevicePrivateDesign Design, string Family, int? Seed);

/// <summary>What one work item found. Status is passed, failed or skipped; Check and Message are the
/// first failure's; Reproducer the file written for it (randomized family, with --out).</summary>
internal sealed record ItemResult(
    int Index,
    string Variant,
    string Design,
    string Family,
    int? Seed,
    string Status,
    int Passed,
    int Failed,
    string? Check,
    string? Message,
    string? Reproducer = null,
    int? ShrunkFrom = null,
    int? ShrunkTo = null,
    string? Replay = null);

/// <summary>Runs the check families of `hmmsim explore` (docs/explore.md).</summary>
internal static class ExploreBattery
{
    public const string Selftests = "selftests";
    public const string Scenarios = "scenarios";
    public const string Random = "random";
    public const string Concurrency = "concurrency";

    public static IReadOnlyList<string> Families { get; } = [Selftests, Scenarios, Random, Concurrency];

    /// <summary>Settings of the randomized family and of shrinking. ForgetWrite is a test hook (see
    /// <see cref="ModelRun.Execute"/>).</summary>
    internal sealed record Options(int Steps, string? OutDir, int ShrinkBudget, Func<RandomOp, bool>? ForgetWrite = null);

    public static ItemResult Run(WorkItem item, Options options) => item.Family switch
    {
        Selftests => RunSelftests(item),
        Scenarios => RunScenarios(item),
        Random => RunRandom(item, options),
        _ => RunConcurrency(item),
    };

    private static ItemResult Result(WorkItem item, int passed, int failed, string? check, string? message) =>
        new(item.Index, item.Variant, item.Design.ToString(), item.Family, item.Seed, failed == 0 ? "passed" : "failed", passed, failed, check, message);

    private static string Describe(Exception e) => $"{(e is AggregateException { InnerException: { } inner } ? inner : e).GetType().Name}: {(e is AggregateException { InnerException: { } i2 } ? i2 : e).Message}";

    // (a) the 152 ported cases of hmm-tests.c, those of this design.
    private static ItemResult RunSelftests(WorkItem item)
    {
        int passed = 0, failed = 0;
        string? check = null, message = null;
        foreach (var c in SelftestCatalog.All)
        {
            if (c.Design != item.Design)
                continue;
            try
            {
                SelftestCatalog.Run(c, item.Variants);
                passed++;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failed++;
                check ??= c.Name;
                message ??= Describe(e);
            }
        }
        return Result(item, passed, failed, check, message);
    }

    // (b) the built-in scenarios: `hmmsim run`'s seed scenario and the example scenario files.
    private static ItemResult RunScenarios(WorkItem item)
    {
        int passed = 0, failed = 0;
        string? check = null, message = null;
        void Outcome(string name, string? failure)
        {
            if (failure is null)
            {
                passed++;
                return;
            }
            failed++;
            check ??= name;
            message ??= failure;
        }
        try
        {
            var r = SeedScenario.Run(item.Design, item.Variants);
            bool expected = item.Design == DevicePrivateDesign.PhysicalAddressSpace ? !r.DeviceProbed : r.DeviceProbed && r.DataVerified;
            Outcome("seed scenario (hmmsim run)", expected ? null : $"{r.DeviceStatus}: {r.Verdict}");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Outcome("seed scenario (hmmsim run)", Describe(e));
        }
        foreach (var (name, bytes) in BuiltInScenarios())
        {
            var scenario = ScenarioFile.Parse(bytes, name);
            if (!scenario.Machine.Designs.Contains(item.Design))
                continue;
            scenario = scenario with { Machine = scenario.Machine with { Designs = [item.Design], Variants = item.Variants } };
            var d = ScenarioRunner.Run(scenario).Designs[0];
            Outcome(name, d.Failure?.ToString());
        }
        return Result(item, passed, failed, check, message);
    }

    /// <summary>The scenario files of examples/, built into the executable.</summary>
    public static IEnumerable<(string Name, byte[] Bytes)> BuiltInScenarios()
    {
        var asm = Assembly.GetExecutingAssembly();
        foreach (var name in asm.GetManifestResourceNames().Where(n => n.StartsWith("examples/", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var s = asm.GetManifestResourceStream(name)!;
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            yield return (name, ms.ToArray());
        }
    }

    // (c) one randomized model-based sequence; a failure is shrunk and written as a scenario with --out.
    internal static ItemResult RunRandom(WorkItem item, Options options)
    {
        int seed = item.Seed!.Value;
        var ops = RandomSequence.Generate(seed, options.Steps);
        var outcome = ModelRun.Execute(ops, item.Design, item.Variants, options.ForgetWrite);
        if (outcome.Failure is not { } failure)
            return Result(item, 1, 0, null, null);
        var result = Result(item, 0, 1, failure.Check, failure.ToString());
        if (options.OutDir is null)
            return result;
        var (shrunk, last) = ShrinkOps(ops, failure, item, options.ShrinkBudget, options.ForgetWrite);
        Directory.CreateDirectory(options.OutDir);
        string file = $"repro-{Slug(item.Variant)}-{item.Design}-seed{seed}.json";
        string path = Path.Combine(options.OutDir, file);
        var json = last.Scenario;
        json["name"] = $"explore: {item.Variant} under {item.Design}, seed {seed}";
        json["description"] = $"Shrunk from {ops.Length} to {shrunk.Count} random steps; fails with {last.Failure!.Check}: {last.Failure.Message}";
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        var replay = ScenarioRunner.Run(ScenarioFile.Load(path));
        string replayVerdict = replay.Passed ? "PASSES (the reproducer does not replay the failure)" : replay.Designs[0].Verdict;
        return result with { Reproducer = file, ShrunkFrom = ops.Length, ShrunkTo = shrunk.Count, Replay = replayVerdict };
    }

    /// <summary>Shrinks a failing op list to a small one failing with the same signature: first the
    /// prefix up to the failing step, then delta debugging.</summary>
    internal static (IReadOnlyList<RandomOp> Ops, ModelRun.Outcome Last) ShrinkOps(RandomOp[] ops, ModelFailure failure, WorkItem item, int budget, Func<RandomOp, bool>? forgetWrite = null)
    {
        IReadOnlyList<RandomOp> current = ops;
        bool Fails(IReadOnlyList<RandomOp> candidate) =>
            ModelRun.Execute(candidate, item.Design, item.Variants, forgetWrite).Failure?.Signature == failure.Signature;
        if (failure.Step >= 0 && failure.Step < ops.Length - 1 && Fails(ops[..(failure.Step + 1)]))
            current = ops[..(failure.Step + 1)];
        current = Shrinker.Shrink(current, Fails, budget, out _);
        var last = ModelRun.Execute(current, item.Design, item.Variants, forgetWrite);
        if (last.Failure?.Signature != failure.Signature)
        {
            // Cannot happen for a deterministic machine; keep the original rather than a wrong reproducer.
            current = ops;
            last = ModelRun.Execute(ops, item.Design, item.Variants, forgetWrite);
        }
        return (current, last);
    }

    private static string Slug(string variant)
    {
        var chars = variant.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray();
        return new string(chars);
    }

    // (d) short multi-threaded runs (ConcurrencyTests): races between device READ and munmap, and
    // between CPU stores and migration to and from the device.
    private static ItemResult RunConcurrency(WorkItem item)
    {
        int passed = 0, failed = 0;
        string? check = null, message = null;
        foreach (var (name, body) in new (string, Action<MachineConfig>)[]
        {
            ("device READ racing munmap", ExploreConcurrency.ReadRacingMunmap),
            ("CPU stores racing migration", ExploreConcurrency.StoresRacingMigration),
        })
        {
            try
            {
                body(new MachineConfig { DevicePrivateDesign = item.Design, Variants = item.Variants, CheckInvariants = false });
                passed++;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failed++;
                check ??= name;
                message ??= Describe(e);
            }
        }
        return Result(item, passed, failed, check, message);
    }
}
