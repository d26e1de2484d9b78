namespace HmmSim.Tests.Mm;

/// <summary>The buddy allocator's per-CPU page list (struct per_cpu_pages): order-0 pages freed wait on
/// the list and are handed out again without merging; the free-page count, /proc/buddyinfo and the
/// invariant checker still see every free page.</summary>
public class PerCpuPagesTests
{
    [Fact]
    public void AnOrder0PageFreedIsTheNextOneHandedOut()
    {
        using var m = new Machine(new MachineConfig());
        var buddy = m.Kernel.Buddy;
        var first = buddy.Alloc(0, compound: false);
        var pfn = first.ToPfn();
        first.Folio.Put();
        Assert.True(buddy.IsPageFree(pfn));
        var again = buddy.Alloc(0, compound: false);
        Assert.Equal(pfn, again.ToPfn());
        Assert.Equal(1, again.Folio.RefCount);
        again.Folio.Put();
    }

    [Fact]
    public void FreePagesAndBuddyinfoCountThePagesOnTheList()
    {
        using var m = new Machine(new MachineConfig());
        var buddy = m.Kernel.Buddy;
        long free = buddy.NrFreePages;
        var blocks = buddy.FreeBlocksPerOrder();
        // More than the list holds, so frees both stay on it and go back to the buddy in batches.
        var pages = new List<HmmSim.Kernel.Page>();
        for (int i = 0; i < 5000; i++)
            pages.Add(buddy.Alloc(0, compound: false));
        Assert.Equal(free - 5000, buddy.NrFreePages);
        foreach (var p in pages)
            p.Folio.Put();
        Assert.Equal(free, buddy.NrFreePages);
        // buddyinfo drains the list first (drain_all_pages): every block merged back as at the start.
        Assert.Equal(blocks, buddy.FreeBlocksPerOrder());
        foreach (var p in pages)
            Assert.True(buddy.IsPageFree(p.ToPfn()));
    }

    [Fact]
    public void MappingAndUnmappingSmallPagesLeavesNoLeakAtTeardown()
    {
        var m = new Machine(new MachineConfig { CheckInvariants = true });
        var p = m.CreateProcess();
        for (int round = 0; round < 3; round++)
        {
            Assert.Equal(Errno.None, p.Mmap(0, 8 << 20, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
            Assert.Equal(Errno.None, p.Madvise(a, 8 << 20, Advice.NoHugePage));
            for (ulong off = 0; off < 8 << 20; off += 4096)
                p.WriteInt32(a + off, (int)off);
            Assert.Equal(Errno.None, p.Munmap(a, 8 << 20));
        }
        p.Dispose();
        m.Dispose();   // the teardown check: free + kept == free at boot
    }

    [Fact]
    public void ALargeAllocationDrainsTheListBeforeItFails()
    {
        // Every page allocated one by one and freed again: most of them wait on the per-CPU list, and
        // the THP-sized blocks they make up exist only once the list is drained (drain_all_pages).
        using var m = new Machine(new MachineConfig { RamBytes = 64UL << 20, HugetlbPages = 0 });
        var buddy = m.Kernel.Buddy;
        int Thps()
        {
            var got = new List<HmmSim.Kernel.Page>();
            for (var p = buddy.Alloc(9, compound: true); !p.IsNull; p = buddy.Alloc(9, compound: true))
                got.Add(p);
            foreach (var p in got)
                p.Folio.Put();
            return got.Count;
        }
        int fresh = Thps();
        Assert.True(fresh > 0);
        var pages = new List<HmmSim.Kernel.Page>();
        for (var p = buddy.Alloc(0, compound: false); !p.IsNull; p = buddy.Alloc(0, compound: false))
            pages.Add(p);
        foreach (var p in pages)
            p.Folio.Put();
        Assert.Equal(fresh, Thps());
    }
}
