namespace HmmSim.Cli.Explore;

/// <summary>What a randomized step does; the mix of DeviceModelBasedTests (tests/HmmSim.Tests/Hmm).</summary>
internal enum RandomOpKind : byte
{
    CpuWrite,
    CpuRead,
    DevRead,
    DevWrite,
    MigrateToDev,
    MigrateToSys,
    Exclusive,
    Snapshot,
    Mprotect,
    ForkOrExit,
    Munmap,
    DontNeed,
    Mmap,
}

/// <summary>One randomized step, model-free: <see cref="Proc"/> picks a live process modulo how many
/// there are when it runs, so any subsequence of a generated list still runs (what shrinking needs).
/// Start/Count are pages of the window; Arg is the op's own random number (data seed, prot, choice).</summary>
internal readonly record struct RandomOp(RandomOpKind Kind, int Proc, int Unit, int Start, int Count, int Arg)
{
    public override string ToString() => $"{Kind} proc {Proc} unit {Unit} [{Start}, +{Count}) arg {Arg}";
}

/// <summary>Generates the step list of one seed: the same seed gives the same list on every machine.</summary>
internal static class RandomSequence
{
    /// <summary>Pages of the window every process maps at start; the last <see cref="ThpPages"/> are one
    /// MADV_HUGEPAGE PMD.</summary>
    public const int WindowPages = 1024;
    public const int ThpFirst = 512;
    public const int ThpPages = WindowPages - ThpFirst;
    public const ulong WindowBase = 0x4000_0000;
    public const int DefaultSteps = 150;

    public static RandomOp[] Generate(int seed, int steps)
    {
        var rng = new Random(seed);
        var ops = new RandomOp[steps];
        for (int i = 0; i < steps; i++)
        {
            int op = rng.Next(100);
            var kind = op switch
            {
                < 10 => RandomOpKind.CpuWrite,
                < 18 => RandomOpKind.CpuRead,
                < 30 => RandomOpKind.DevRead,
                < 40 => RandomOpKind.DevWrite,
                < 54 => RandomOpKind.MigrateToDev,
                < 60 => RandomOpKind.MigrateToSys,
                < 64 => RandomOpKind.Exclusive,
                < 72 => RandomOpKind.Snapshot,
                < 77 => RandomOpKind.Mprotect,
                < 82 => RandomOpKind.ForkOrExit,
                < 86 => RandomOpKind.Munmap,
                < 91 => RandomOpKind.DontNeed,
                < 94 => RandomOpKind.Mmap,
                _ => RandomOpKind.CpuRead,
            };
            int proc = rng.Next(3), unit = rng.Next(2);
            int start, count;
            if (rng.Next(6) == 0)
                (start, count) = (ThpFirst, ThpPages);
            else
            {
                // Mostly inside the initial mappings ([0, 64), [128, 160), the PMD), sometimes anywhere.
                start = rng.Next(4) switch
                {
                    0 => rng.Next(64),
                    1 => 128 + rng.Next(32),
                    2 => ThpFirst + rng.Next(ThpPages),
                    _ => rng.Next(WindowPages),
                };
                count = Math.Min(1 + rng.Next(rng.Next(3) == 0 ? 80 : 16), WindowPages - start);
            }
            if (kind is RandomOpKind.CpuWrite or RandomOpKind.CpuRead)
                count = 1;
            ops[i] = new RandomOp(kind, proc, unit, start, count, rng.Next(1, int.MaxValue));
        }
        return ops;
    }
}
