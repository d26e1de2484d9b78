using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using HmmSim.Cli.Report;

namespace HmmSim.Cli.Explore;

/// <summary>`hmmsim explore`: the check battery under each design variant, as a matrix; shards for
/// batch engines and `explore merge` to put shards together (docs/explore.md).</summary>
internal static class ExploreCommand
{
    /// <summary>The shard count for engines that give only an index (Kubernetes Indexed Jobs).</summary>
    public const string ShardCountVariable = "HMMSIM_SHARD_COUNT";

    private sealed record Settings(
        IReadOnlyList<(string Label, DesignVariants Variants)> Variants,
        IReadOnlyList<DevicePrivateDesign> Designs,
        IReadOnlyList<string> Families,
        ExploreSeeds Seeds,
        int Steps,
        ExploreShard? Shard,
        string? OutDir,
        int ShrinkBudget,
        int Jobs);

    public static Command Create()
    {
        var cmd = new Command("explore", "Run the check battery (selftests, seed scenarios, randomized model-based sequences, concurrency) under each design variant and print a matrix of what breaks; shrink failing sequences to scenario files. "
            + "Examples: hmmsim explore --families random --seeds 20 --out repro; hmmsim explore --variant RmapMatch=PfnOnly --design redesign; hmmsim explore --shard 3/16 --json > shard3.json");
        var variant = new Option<string[]>("--variant") { Description = "A machine configuration, Name=Value[,Name=Value...] over the DesignVariants switches (repeatable; \"default\" for none).", AllowMultipleArgumentsPerToken = false };
        var variants = new Option<string?>("--variants") { Description = "all-single: the default and each switch alone at each non-default value (the default without --variant); default: only the default configuration; none." };
        var design = new Option<string>("--design") { Description = "today, redesign or both (also PhysicalAddressSpace, DeviceAddressSpace).", DefaultValueFactory = _ => "both" };
        var families = new Option<string>("--families") { Description = "Comma-separated check families: selftests, scenarios, random, concurrency (default all).", DefaultValueFactory = _ => string.Join(',', ExploreBattery.Families) };
        var seeds = new Option<int>("--seeds") { Description = "Randomized sequences per configuration.", DefaultValueFactory = _ => 4 };
        var seedStart = new Option<int>("--seed-start") { Description = "The first seed.", DefaultValueFactory = _ => 1 };
        var steps = new Option<int>("--steps") { Description = "Steps per randomized sequence.", DefaultValueFactory = _ => RandomSequence.DefaultSteps };
        var shard = new Option<string?>("--shard") { Description = "K/N: run only work items whose index is K modulo N (0 <= K < N). Without it, SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or JOB_COMPLETION_INDEX are used." };
        var shardCount = new Option<int?>("--shard-count") { Description = $"The shard count when the engine gives only an index (JOB_COMPLETION_INDEX); or set {ShardCountVariable}." };
        var json = new Option<bool>("--json") { Description = "Print the results as JSON (docs/explore.md)." };
        var report = new Option<string?>("--report") { Description = "Also write the matrix as a self-contained HTML file." };
        var outDir = new Option<string?>("--out") { Description = "Shrink each failing randomized sequence and write it to this directory as a scenario file that `hmmsim run` replays." };
        var budget = new Option<int>("--shrink-budget") { Description = "Runs the shrinker may spend per failing sequence.", DefaultValueFactory = _ => 300 };
        var jobs = new Option<int>("--jobs") { Description = "Work items run at once.", DefaultValueFactory = _ => 1 };
        foreach (var o in new Option[] { variant, variants, design, families, seeds, seedStart, steps, shard, shardCount, json, report, outDir, budget, jobs })
            cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            var settings = ParseSettings(r.GetValue(variant) ?? [], r.GetValue(variants), r.GetValue(design)!, r.GetValue(families)!, r.GetValue(seeds), r.GetValue(seedStart),
                r.GetValue(steps), r.GetValue(shard), r.GetValue(shardCount), r.GetValue(outDir), r.GetValue(budget), r.GetValue(jobs), error);
            if (settings is null)
                return 2;
            var doc = Run(settings);
            int exit = Print(doc, r.GetValue(json), r.GetValue(report), output);
            if (!Interrupt.Requested || exit == 2)
                return exit;
            error.WriteLine($"hmmsim explore: interrupted (Ctrl-C) after {doc.Items.Count} of {doc.TotalItems} work items");
            return Interrupt.ExitCode;
        });
        cmd.Subcommands.Add(MergeCommand());
        return cmd;
    }

    private static Command MergeCommand()
    {
        var merge = new Command("merge", "Combine the --json files of explore shards into one matrix. Example: hmmsim explore merge shard-*.json --report explore.html");
        var files = new Argument<string[]>("files") { Description = "The shards' --json outputs.", Arity = ArgumentArity.OneOrMore };
        var json = new Option<bool>("--json") { Description = "Print the merged results as JSON." };
        var report = new Option<string?>("--report") { Description = "Also write the matrix as a self-contained HTML file." };
        merge.Arguments.Add(files);
        merge.Options.Add(json);
        merge.Options.Add(report);
        merge.SetAction(r =>
        {
            var error = r.InvocationConfiguration.Error;
            var doc = Merge(r.GetValue(files)!, error);
            return doc is null ? 2 : Print(doc, r.GetValue(json), r.GetValue(report), r.InvocationConfiguration.Output);
        });
        return merge;
    }

    private static int Print(ExploreDocument doc, bool json, string? report, TextWriter output)
    {
        if (report is not null && !ReportWriter.TryWrite("explore", report, doc.ToHtml))
            return 2;
        output.Write(json ? doc.ToJson() + "\n" : doc.ToText());
        return doc.Passed ? 0 : 1;
    }

    private static Settings? ParseSettings(string[] variantArgs, string? variantsSet, string design, string familiesArg, int seeds, int seedStart, int steps,
        string? shardArg, int? shardCount, string? outDir, int budget, int jobs, TextWriter error)
    {
        int Bad(string message)
        {
            error.WriteLine($"hmmsim explore: {message}");
            return 0;
        }
        var list = new List<(string, DesignVariants)>();
        var set = variantsSet ?? (variantArgs.Length == 0 ? "all-single" : "default");
        switch (set.ToLowerInvariant())
        {
            case "all-single":
                list.AddRange(VariantSwitches.AllSingle().Select(v => (VariantSwitches.Describe(v), v)));
                break;
            case "default":
                list.Add(("default", new DesignVariants()));
                break;
            case "none":
                break;
            default:
                Bad($"unknown --variants '{set}' (all-single, default or none)");
                return null;
        }
        foreach (var text in variantArgs)
        {
            if (!VariantSwitches.TryParse(text, out var v, out var why))
            {
                Bad($"--variant {text}: {why}");
                return null;
            }
            string label = VariantSwitches.Describe(v);
            if (!list.Any(x => x.Item1 == label))
                list.Add((label, v));
        }
        if (list.Count == 0)
        {
            Bad("no machine configuration: give --variant or --variants all-single|default");
            return null;
        }
        DevicePrivateDesign[] designs = design.ToLowerInvariant() switch
        {
            "both" => [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace],
            "today" or "physicaladdressspace" => [DevicePrivateDesign.PhysicalAddressSpace],
            "redesign" or "deviceaddressspace" => [DevicePrivateDesign.DeviceAddressSpace],
            _ => [],
        };
        if (designs.Length == 0)
        {
            Bad($"unknown --design '{design}' (today, redesign or both)");
            return null;
        }
        var families = familiesArg.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(f => f.ToLowerInvariant()).Distinct().ToList();
        var unknown = families.Where(f => !ExploreBattery.Families.Contains(f)).ToList();
        if (families.Count == 0 || unknown.Count > 0)
        {
            Bad($"unknown check family '{string.Join(',', unknown)}' (valid: {string.Join(", ", ExploreBattery.Families)})");
            return null;
        }
        // The battery's order, whatever order the user wrote.
        families = ExploreBattery.Families.Where(families.Contains).ToList();
        if (seeds < 1 || steps < 1 || budget < 0 || jobs < 1)
        {
            Bad("--seeds, --steps and --jobs must be at least 1, --shrink-budget at least 0");
            return null;
        }
        if (!TryShard(shardArg, shardCount, out var shard, out var shardError))
        {
            Bad(shardError!);
            return null;
        }
        return new Settings(list, designs, families, new ExploreSeeds(seedStart, seeds), steps, shard, outDir, budget, jobs);
    }

    /// <summary>The shard from --shard, else from the batch engine's environment; null when unsharded.</summary>
    internal static bool TryShard(string? shardArg, int? shardCount, out ExploreShard? shard, out string? error)
    {
        shard = null;
        error = null;
        int index, count;
        string source;
        if (shardArg is not null)
        {
            var parts = shardArg.Split('/');
            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out index) || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out count))
            {
                error = $"--shard '{shardArg}' is not K/N";
                return false;
            }
            source = "--shard";
        }
        else if (Env("SLURM_ARRAY_TASK_ID") is { } slurmId)
        {
            // An array --array=1-16 numbers tasks from its minimum; shards count from 0.
            int min = Env("SLURM_ARRAY_TASK_MIN") is { } m && int.TryParse(m, CultureInfo.InvariantCulture, out int mm) ? mm : 0;
            if (!int.TryParse(slurmId, CultureInfo.InvariantCulture, out index) || !TryCount(shardCount, Env("SLURM_ARRAY_TASK_COUNT"), out count))
            {
                error = "SLURM_ARRAY_TASK_ID is set but the shard count is unknown or not a number (SLURM_ARRAY_TASK_COUNT, --shard-count or " + ShardCountVariable + ")";
                return false;
            }
            index -= min;
            source = "SLURM_ARRAY_TASK_ID";
        }
        else if (Env("JOB_COMPLETION_INDEX") is { } k8sIndex)
        {
            if (!int.TryParse(k8sIndex, CultureInfo.InvariantCulture, out index) || !TryCount(shardCount, null, out count))
            {
                error = $"JOB_COMPLETION_INDEX is set: give the shard count with --shard-count or {ShardCountVariable} (the Job's completions)";
                return false;
            }
            source = "JOB_COMPLETION_INDEX";
        }
        else
            return true;
        if (count < 1 || index < 0 || index >= count)
        {
            error = $"shard {index}/{count} from {source}: need 0 <= index < count";
            return false;
        }
        shard = new ExploreShard(index, count);
        return true;
    }

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

    private static bool TryCount(int? option, string? engine, out int count)
    {
        if (option is { } o)
        {
            count = o;
            return true;
        }
        if ((engine ?? Env(ShardCountVariable)) is { } text)
            return int.TryParse(text, CultureInfo.InvariantCulture, out count);
        count = 0;
        return false;
    }

    private static ExploreDocument Run(Settings s)
    {
        var rows = new List<ExploreRow>();
        var items = new List<WorkItem>();
        foreach (var (label, variants) in s.Variants)
        {
            foreach (var design in s.Designs)
            {
                string? skip = VariantSwitches.SkipReason(variants, design);
                rows.Add(new ExploreRow(label, design.ToString(), skip));
                if (skip is not null)
                    continue;
                foreach (var family in s.Families)
                {
                    if (family == ExploreBattery.Random)
                        for (int seed = s.Seeds.Start; seed < s.Seeds.Start + s.Seeds.Count; seed++)
                            items.Add(new WorkItem(items.Count, label, variants, design, family, seed));
                    else
                        items.Add(new WorkItem(items.Count, label, variants, design, family, null));
                }
            }
        }
        var mine = s.Shard is { } sh ? items.Where(i => i.Index % sh.Count == sh.Index).ToList() : items;
        var options = new ExploreBattery.Options(s.Steps, s.OutDir, s.ShrinkBudget);
        var results = new ItemResult?[mine.Count];
        // Ctrl-C: no new work item starts; the matrix holds the ones that ran.
        Parallel.For(0, mine.Count, new ParallelOptions { MaxDegreeOfParallelism = s.Jobs }, i =>
        {
            if (!Interrupt.Requested)
                results[i] = ExploreBattery.Run(mine[i], options);
        });
        return ExploreDocument.Build(s.Shard ?? new ExploreShard(0, 1), s.Families, s.Seeds, s.Steps, items.Count, rows, results.OfType<ItemResult>());
    }

    /// <summary>Shards of one exploration (same rows, families, seeds) into one document.</summary>
    internal static ExploreDocument? Merge(IReadOnlyList<string> files, TextWriter error)
    {
        var docs = new List<ExploreDocument>();
        foreach (var f in files)
        {
            try
            {
                var d = ExploreDocument.FromJson(File.ReadAllText(f));
                if (d.Schema != ExploreDocument.SchemaName)
                {
                    error.WriteLine($"hmmsim explore merge: {f}: schema '{d.Schema}', expected '{ExploreDocument.SchemaName}'");
                    return null;
                }
                docs.Add(d);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or NotSupportedException)
            {
                error.WriteLine($"hmmsim explore merge: {f}: {e.Message}");
                return null;
            }
        }
        var first = docs[0];
        foreach (var d in docs.Skip(1))
        {
            if (d.TotalItems != first.TotalItems || d.Steps != first.Steps || d.Seeds != first.Seeds || !d.Families.SequenceEqual(first.Families) || !d.Rows.SequenceEqual(first.Rows))
            {
                error.WriteLine("hmmsim explore merge: the files come from different explorations (variants, designs, families, seeds or steps differ)");
                return null;
            }
        }
        var items = docs.SelectMany(d => d.Items).GroupBy(i => i.Index).Select(g => g.First()).ToList();
        if (items.Count != first.TotalItems)
        {
            error.WriteLine($"hmmsim explore merge: {first.TotalItems - items.Count} of {first.TotalItems} work items are missing (a shard's file is missing or failed)");
            return null;
        }
        return ExploreDocument.Build(null, first.Families, first.Seeds, first.Steps, first.TotalItems, first.Rows, items);
    }
}
