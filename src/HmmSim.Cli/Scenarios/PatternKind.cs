namespace HmmSim.Cli.Scenarios;

/// <summary>The data patterns of fill and verify.</summary>
internal enum PatternKind
{
    /// <summary>The i-th 32-bit int equals start + i (hmm-tests.c's `ptr[i] = i`).</summary>
    Index,
    /// <summary>Every 32-bit int equals value.</summary>
    Constant,
    /// <summary>Bytes from System.Random(seed): the same bytes on every run.</summary>
    SeededRandom,
}
