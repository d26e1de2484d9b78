namespace HmmSim.Kernel;

/// <summary>One step of a PMD walk: the 2 MiB-or-less slice [Addr, Next) and the non-none PMD entry
/// covering it (a table, a huge leaf, or a non-present entry).</summary>
internal readonly record struct PmdStep(ulong Addr, ulong Next, Pfn PmdTable, ulong Pmd);

/// <summary>The outer loops of walk_page_range over [start, end): the non-none PMD entries, one per
/// 2 MiB slice, skipping a whole PUD where no PMD table exists. Tables are read afresh at every
/// step, so the body may split or replace the PMD it is given. Allocates nothing.</summary>
internal ref struct PmdWalk(MmStruct mm, ulong start, ulong end)
{
    private ulong _next = start;

    public PmdStep Current { get; private set; }

    public readonly PmdWalk GetEnumerator() => this;

    public bool MoveNext()
    {
        while (_next < end)
        {
            ulong addr = _next;
            ulong next = Math.Min(end, (addr + Arch.PmdSize) & ~(Arch.PmdSize - 1));
            if (!mm.PmdTable(addr, alloc: false, out var pmdTable))
            {
                _next = Math.Min(end, (addr + Arch.PudSize) & ~(Arch.PudSize - 1));
                continue;
            }
            _next = next;
            ulong pmd = mm.PmdRef(pmdTable, addr);
            if (pmd == 0)
                continue;
            Current = new PmdStep(addr, next, pmdTable, pmd);
            return true;
        }
        return false;
    }
}
