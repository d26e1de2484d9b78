using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace HmmSim.Kernel;

/// <summary>The page tables of an mm (include/linux/pgtable.h walks, mm/memory.c __pXd_alloc and
/// free_pgd_range). Tables are real pages from the buddy whose bytes are the 512 entries, so a
/// PMD entry holds the real PFN of its PTE table, as the hardware walker would read it.</summary>
public sealed partial class MmStruct
{
    /// <summary>pgd_index: the PGD slot (0..511) of a user virtual address.</summary>
    public static int PgdIndex(ulong addr) => (int)((addr >> Arch.PgdirShift) & Arch.PtrsPerTableMask);
    /// <summary>pud_index: the PUD slot (0..511) of a user virtual address.</summary>
    public static int PudIndex(ulong addr) => (int)((addr >> Arch.PudShift) & Arch.PtrsPerTableMask);
    /// <summary>pmd_index: the PMD slot (0..511) of a user virtual address.</summary>
    public static int PmdIndex(ulong addr) => (int)((addr >> Arch.PmdShift) & Arch.PtrsPerTableMask);
    /// <summary>pte_index: the PTE slot (0..511) of a user virtual address.</summary>
    public static int PteIndex(ulong addr) => (int)((addr >> Arch.PageShift) & Arch.PtrsPerTableMask);

    /// <summary>The 512 entries of a table page.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<ulong> Table(Pfn table) => MemoryMarshal.Cast<byte, ulong>(Kernel.Memmap.PfnToPage(table).WriteData());

    /// <summary>pte_offset: the PTE for <paramref name="addr"/> in the PTE table page <paramref name="pteTable"/>
    /// (a raw pte_t the caller reads or writes under the page-table lock).</summary>
    public ref ulong PteRef(Pfn pteTable, ulong addr) => ref Table(pteTable)[PteIndex(addr)];
    /// <summary>pmd_offset: the PMD entry for <paramref name="addr"/> in the PMD table page <paramref name="pmdTable"/>.</summary>
    public ref ulong PmdRef(Pfn pmdTable, ulong addr) => ref Table(pmdTable)[PmdIndex(addr)];

    /// <summary>pmd_off / pmd_alloc: the PMD table covering <paramref name="addr"/>. Without
    /// <paramref name="alloc"/> a missing level gives false; with it, false means out of memory.</summary>
    public bool PmdTable(ulong addr, bool alloc, out Pfn pmdTable)
    {
        pmdTable = default;
        if (!NextLevel(Pgd, PgdIndex(addr), alloc, out var pud))
            return false;
        return NextLevel(pud, PudIndex(addr), alloc, out pmdTable);
    }

    /// <summary>pte_offset_map / pte_alloc: the PTE table behind a PMD entry. Returns false if the
    /// PMD is none (and not allocating), a leaf, or a non-present PMD entry.</summary>
    public bool PteTable(Pfn pmdTable, ulong addr, bool alloc, out Pfn pteTable)
    {
        pteTable = default;
        ulong pmd = Table(pmdTable)[PmdIndex(addr)];
        if (pmd != 0 && !Arch.IsTable(pmd))
            return false;
        return NextLevel(pmdTable, PmdIndex(addr), alloc, out pteTable);
    }

    /// <summary>The PTE table for an address, walking from the top; false if any level is missing.</summary>
    public bool WalkToPte(ulong addr, out Pfn pteTable)
    {
        pteTable = default;
        return PmdTable(addr, false, out var pmd) && PteTable(pmd, addr, false, out pteTable);
    }

    private bool NextLevel(Pfn table, int index, bool alloc, out Pfn next)
    {
        ulong e = Table(table)[index];
        if (e != 0)
        {
            if (!Arch.IsTable(e))
            {
                next = default;
                return false;
            }
            next = Arch.TablePfn(e);
            return true;
        }
        if (!alloc)
        {
            next = default;
            return false;
        }
        var fresh = AllocTable();
        if (fresh.Value == ulong.MaxValue)
        {
            next = default;
            return false;
        }
        lock (PageTableLock)
        {
            ref ulong slot = ref Table(table)[index];
            if (slot == 0)
            {
                slot = Arch.MkTable(fresh);
                next = fresh;
                return true;
            }
            next = Arch.IsTable(slot) ? Arch.TablePfn(slot) : default;
        }
        FreeTable(fresh);   // another thread populated it first (as __pte_alloc races)
        return next.Value != 0 || Arch.IsTable(Table(table)[index]);
    }

    /// <summary>pte_alloc_one / pmd_alloc_one: a zeroed page-table page, or pfn ulong.MaxValue on OOM.</summary>
    public Pfn AllocTable()
    {
        var page = Kernel.Buddy.Alloc(0, compound: false);
        if (page.IsNull)
            return new Pfn(ulong.MaxValue);
        page.Desc.Flags |= (uint)PageFlags.Table;
        page.WriteData();   // give it its (zeroed) bytes now: a table is always read
        Interlocked.Add(ref PgtablesBytes, (long)Arch.PageSize);
        Kernel.VmStat.Inc(VmStatItem.NrPageTablePages);
        return page.ToPfn();
    }

    /// <summary>pte_free / pmd_free: return an emptied page-table page to the buddy and uncount it
    /// (nr_page_table_pages, pgtables_bytes). Freeing a page that is not a table is a BUG.</summary>
    public void FreeTable(Pfn table)
    {
        var page = Kernel.Memmap.PfnToPage(table);
        if (!page.Test(PageFlags.Table))
            ThrowHelper.KernelBug($"freeing {page} as a page table, but it is not one");
        Interlocked.Add(ref PgtablesBytes, -(long)Arch.PageSize);
        Kernel.VmStat.Add(VmStatItem.NrPageTablePages, -1);
        SyncLocklessWalkers();   // tlb_remove_table: no GUP-fast walk may still be reading it
        page.Folio.Put();
    }

    /// <summary>free_pgd_range: frees the tables that map only [start, end) with no VMA left
    /// between floor and ceiling, so a table shared with a neighbouring VMA stays.</summary>
    public void FreePgdRange(ulong start, ulong end, ulong floor, ulong ceiling)
    {
        lock (PageTableLock)
            FreeLevel(Pgd, 3, start, end, floor, ceiling, 0);
    }

    private static int Shift(int level) => Arch.PageShift + (Arch.PmdShift - Arch.PageShift) * level;

    /// <summary>Frees empty-able child tables of <paramref name="table"/> (a level-<paramref name="level"/>
    /// table: 3 PGD, 2 PUD, 1 PMD) whose whole span lies in [floor, ceiling) and meets [start, end).</summary>
    private void FreeLevel(Pfn table, int level, ulong start, ulong end, ulong floor, ulong ceiling, ulong tableBase)
    {
        int shift = Shift(level);
        ulong span = 1UL << shift;
        var entries = Table(table);
        for (int i = 0; i < Arch.PtrsPerTable; i++)
        {
            ulong lo = tableBase + (ulong)i * span, hi = lo + span;
            if (hi <= start || lo >= end || entries[i] == 0 || !Arch.IsTable(entries[i]))
                continue;
            var child = Arch.TablePfn(entries[i]);
            if (level > 1)
                FreeLevel(child, level - 1, start, end, floor, ceiling, lo);
            if (lo >= floor && (hi <= ceiling || ceiling == 0) && IsEmpty(child))
            {
                entries[i] = 0;
                FreeTable(child);
                entries = Table(table);
            }
        }
    }

    private bool IsEmpty(Pfn table)
    {
        foreach (ulong e in Table(table))
            if (e != 0)
                return false;
        return true;
    }

    /// <summary>Frees every table (exit_mmap's free_pgtables over the whole space, then pgd_free).</summary>
    public void FreeAllTables()
    {
        lock (PageTableLock)
        {
            FreeLevel(Pgd, 3, 0, ulong.MaxValue, 0, 0, 0);
            if (!IsEmpty(Pgd))
                ThrowHelper.KernelBug("exit_mmap: page tables still hold entries after every VMA was unmapped");
            FreeTable(Pgd);
            Pgd = default;
        }
    }
}
