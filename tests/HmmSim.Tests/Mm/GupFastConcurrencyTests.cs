using static HmmSim.Tests.HmmDevice.ConcurrencyTests;
using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

/// <summary>GUP-fast takes no mmap_lock and no page-table lock, so it races everything that changes
/// page tables. Real threads, bounded by iteration counts; the per-operation checker is off (it would
/// serialize the threads), and each test ends with every page and table given back.</summary>
public class GupFastConcurrencyTests
{
    /// <summary>A free 2 MiB-aligned address with nothing else mapped in its PMD.</summary>
    private static ulong FreePmdSlot(Process p, int slots)
    {
        ulong raw = Map(p, (ulong)(slots + 1) * PmdSize);
        Assert.Equal(Errno.None, p.Munmap(raw, (ulong)(slots + 1) * PmdSize));
        return (raw + PmdSize - 1) & ~(PmdSize - 1);
    }

    /// <summary>The model's RCU table freeing, step by step: while a lockless walk is in progress
    /// (local_irq_save), munmap's free_pgtables unlinks the PTE table but does not free it; it is freed
    /// when the walk ends.</summary>
    [Fact]
    public void FreeingAPageTableWaitsForALocklessWalkInProgress()
    {
        using var m = new Machine(new MachineConfig { CheckInvariants = false });
        using var p = m.CreateProcess();
        ulong slot = FreePmdSlot(p, 1);
        Assert.Equal(Errno.None, p.Mmap(slot, PageSize, Rw, PrivAnon | MapFlags.Fixed, out _));
        p.WriteInt32(slot, 1);
        Assert.True(p.Mm.WalkToPte(slot, out var pteTable));
        var table = m.Kernel.Memmap.PfnToPage(pteTable);
        int token = p.Mm.LocklessWalkBegin();
        var munmap = new Thread(() => Assert.Equal(Errno.None, p.Munmap(slot, PageSize)));
        munmap.Start();
        Assert.True(SpinWait.SpinUntil(() => p.Mm.TableFreesWaiting > 0, TimeSpan.FromMinutes(1)), "munmap never came to free the table");
        // Unlinked from the PMD, but still a live page table for the walk that may be reading it.
        Assert.False(p.Mm.WalkToPte(slot, out _));
        Assert.True(table.Test(PageFlags.Table));
        Assert.Equal(1, table.Folio.RefCount);
        p.Mm.LocklessWalkEnd(token);
        munmap.Join();
        Assert.Equal(0, table.Folio.RefCount);
        Assert.Equal(0, p.Mm.TableFreesWaiting);
    }

    [Fact]
    public void ForkWriteProtectsInsideOneWriteProtectSeqSection()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        int before = p.Mm.WriteProtectSeq;
        Assert.Equal(0, before & 1);
        using (p.Fork())
            Assert.Equal(before + 2, p.Mm.WriteProtectSeq);
    }

    /// <summary>One thread maps, stamps and unmaps a range over and over (each munmap frees its page
    /// tables, and the next mapping at the other slot reuses them), alternating between two slots;
    /// another walks slot A locklessly the whole time. Every page it gets must hold slot A's stamp for
    /// that address: a walk through a freed and reused table would find slot B's pages or garbage.</summary>
    [Fact]
    public void GupFastRacingMunmapOnlyReturnsPagesMappedAtTheAddress()
    {
        const int pages = 64, rounds = 400;
        using var m = new Machine(new MachineConfig { CheckInvariants = false });
        long freeAtBoot = m.Kernel.Buddy.NrFreePages;
        long taken = 0;
        using (var p = m.CreateProcess())
        {
            ulong slotA = FreePmdSlot(p, 2), slotB = slotA + PmdSize;
            ulong len = pages * PageSize;
            int stop = 0;
            var stamp = new byte[8];
            RunThreads(
                () =>
                {
                    var got = new Page[pages];
                    for (int iteration = 0; Volatile.Read(ref stop) == 0; iteration++)
                    {
                        // Alternately the lockless walk alone, and pins that fall back to the slow path.
                        bool pin = (iteration & 1) == 1;
                        long n = pin
                            ? Gup.PinUserPagesFast(p.Mm, slotA, got, FollFlags.None)
                            : Gup.GetUserPagesFastOnly(p.Mm, slotA, got, FollFlags.None);
                        for (int i = 0; i < n; i++)
                        {
                            // A page not stamped yet reads 0 (it is mapped before the write lands).
                            ulong seen = BitConverter.ToUInt64(got[i].ReadData());
                            if (seen != 0)
                                Assert.Equal(slotA + (ulong)i * PageSize, seen & ((1UL << 48) - 1));
                            if (pin)
                                Gup.UnpinUserPage(got[i]);
                            else
                                Gup.PutPage(got[i]);
                        }
                        if (n > 0)
                            Interlocked.Add(ref taken, n);
                    }
                },
                () =>
                {
                    try
                    {
                        // On a loaded machine the walker may not run at all in the first rounds: go on (up
                        // to 20 times as long) until it has seen the range mapped at least once.
                        for (int r = 0; r < rounds || (Interlocked.Read(ref taken) == 0 && r < 20 * rounds); r++)
                        {
                            ulong slot = (r & 1) == 0 ? slotA : slotB;
                            Assert.Equal(Errno.None, p.Mmap(slot, len, Rw, PrivAnon | MapFlags.Fixed, out _));
                            for (ulong off = 0; off < len; off += PageSize)
                            {
                                BitConverter.TryWriteBytes(stamp, (slot + off) | ((ulong)r << 48));
                                p.Write(slot + off, stamp);
                            }
                            Assert.Equal(Errno.None, p.Munmap(slot, len));
                        }
                    }
                    finally
                    {
                        Volatile.Write(ref stop, 1);
                    }
                });
            m.CheckInvariants();
        }
        Assert.True(taken > 0, "the walker never found the range mapped");
        // Every page and every page table came back: no reference the racing walks took was lost.
        Assert.Equal(freeAtBoot, m.Kernel.Buddy.NrFreePages);
    }

    /// <summary>fork() write-protects the parent's anonymous pages and shares them with the child; a
    /// write pin taken meanwhile must not end on such a page, or the parent's next write would COW
    /// away from it. mm->write_protect_seq sends such pins to the slow path, which waits for fork.
    /// So after every pin, a CPU write by the parent is seen through the pinned page.</summary>
    [Fact]
    public void WritePinRacingForkStaysThePageTheParentWritesTo()
    {
        const int pages = 16, forks = 120;
        using var m = new Machine(new MachineConfig { CheckInvariants = false });
        long freeAtBoot = m.Kernel.Buddy.NrFreePages;
        using (var p = m.CreateProcess())
        {
            ulong a = Map(p, pages * PageSize);
            for (int i = 0; i < pages; i++)
                p.WriteInt32(a + (ulong)i * PageSize, i);
            int stop = 0;
            RunThreads(
                () =>
                {
                    try
                    {
                        for (int f = 0; f < forks; f++)
                        {
                            using var child = p.Fork();
                            for (int i = 0; i < pages; i++)
                                child.ReadInt32(a + (ulong)i * PageSize);
                        }
                    }
                    finally
                    {
                        Volatile.Write(ref stop, 1);
                    }
                },
                () =>
                {
                    var one = new Page[1];
                    for (int v = 1; Volatile.Read(ref stop) == 0; v++)
                    {
                        ulong addr = a + (ulong)(v % pages) * PageSize;
                        Assert.Equal(1, p.PinUserPagesFast(addr, one, FollFlags.Write));
                        p.WriteInt32(addr, v);
                        Assert.Equal(v, BitConverter.ToInt32(one[0].ReadData()));
                        Gup.UnpinUserPage(one[0]);
                    }
                });
            m.CheckInvariants();
        }
        Assert.Equal(freeAtBoot, m.Kernel.Buddy.NrFreePages);
    }
}
