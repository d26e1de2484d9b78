namespace HmmSim.Cli.Scenarios;

/// <summary>What a "dump" step printed: where (the step and its address as written) and each page's entry.</summary>
internal sealed record PageDump(string Step, int Line, string At, ulong Address, IReadOnlyList<PageTableDumpEntry> Entries);
