namespace HmmSim.Kernel;

/// <summary>The kernel log ring.</summary>
internal sealed class Dmesg
{
    private readonly Lock _lock = new();
    private readonly List<string> _lines = [];

    public void Log(string line)
    {
        lock (_lock)
            _lines.Add(line);
    }

    public IReadOnlyList<string> Snapshot()
    {
        lock (_lock)
            return [.. _lines];
    }
}
