namespace HmmSim.Tests.Mm;

/// <summary>migrate_vma_finalize restores the migration entries of small folios a run at a time (one rmap
/// walk per run, docs/fidelity.md). The result must be the per-folio one: every VMA of the fork family that
/// held an entry for a page gets the new page, runs break where the rmap index or the PMD does, and pages
/// that did not move get their old mapping back.</summary>
public class RemoveMigrationPtesRunTests
{
    private const ulong PageSize = 4096;

    private static byte[] Pattern(ulong size, int seed)
    {
        var data = new byte[size];
        for (int i = 0; i < data.Length; i++)
            data[i] = (byte)(i * 31 + (i >> 12) * 7 + seed);
        return data;
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void SharedPagesOfAForkMoveInBothProcessesAcrossAPmdBoundary(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var parent = m.CreateProcess();
        const ulong pages = 700, size = pages * PageSize;
        // Two PMDs' worth, started off a PMD boundary so the runs cross one.
        Assert.Equal(Errno.None, parent.Mmap(0, size + (4UL << 20), Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong raw));
        ulong a = ((raw + (2UL << 20) - 1) & ~((2UL << 20) - 1)) + 300 * PageSize;
        Assert.Equal(Errno.None, parent.Madvise(a, size, Advice.NoHugePage));
        var data = Pattern(size, 1);
        parent.Write(a, data);
        var child = parent.Fork();

        using var pdev = parent.OpenDmirror(0);
        var mirror = new byte[size];
        var r = pdev.MigrateToDevice(a, pages, mirror);
        Assert.Equal(Errno.None, r.Error);
        Assert.Equal(pages, r.CPages);
        Assert.Equal(data, mirror);

        // try_to_migrate put entries in the child too; the run's one walk found its VMA.
        using var cdev = child.OpenDmirror(0);
        var prot = new byte[pages];
        foreach (var (proc, dev) in new[] { (parent, pdev), (child, cdev) })
        {
            Assert.Equal(Errno.None, dev.Snapshot(a, pages, prot).Error);
            for (ulong i = 0; i < pages; i++)
            {
                Assert.True((prot[i] & (byte)DmirrorProt.DevPrivateLocal) != 0, $"page {i}: {prot[i]:x2}");
                Assert.False(new PagemapEntry(proc.PagemapEntry(a + i * PageSize)).Present);
            }
        }

        // Back through the child's handle: the parent's entries follow, and both read the data.
        Assert.Equal(Errno.None, cdev.MigrateToSystem(a, pages).Error);
        for (ulong i = 0; i < pages; i++)
        {
            var pe = new PagemapEntry(parent.PagemapEntry(a + i * PageSize));
            var ce = new PagemapEntry(child.PagemapEntry(a + i * PageSize));
            Assert.True(pe.Present && ce.Present, $"page {i}");
            Assert.Equal(pe.Pfn, ce.Pfn);
        }
        var back = new byte[size];
        parent.Read(a, back);
        Assert.Equal(data, back);
        child.Read(a, back);
        Assert.Equal(data, back);
        m.CheckInvariants();
    }

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void AChildsOwnAndSharedPagesInOneWindowEachGetTheirOwnPage(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var parent = m.CreateProcess();
        const ulong pages = 128, size = pages * PageSize;
        Assert.Equal(Errno.None, parent.Mmap(0, size, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
        var parentData = Pattern(size, 3);
        parent.Write(a, parentData);
        var child = parent.Fork();
        // Every third page the child writes is its own (its anon_vma); the rest stay the parent's. The
        // finalize's runs break at every change of rmap owner.
        var childData = (byte[])parentData.Clone();
        for (ulong i = 0; i < pages; i += 3)
        {
            var own = Pattern(PageSize, (int)i + 100);
            own.CopyTo(childData, (int)(i * PageSize));
            child.Write(a + i * PageSize, own);
        }

        using var dev = child.OpenDmirror(0);
        var mirror = new byte[size];
        var r = dev.MigrateToDevice(a, pages, mirror);
        Assert.Equal(Errno.None, r.Error);
        Assert.Equal(pages, r.CPages);
        Assert.Equal(childData, mirror);
        var back = new byte[size];
        parent.Read(a, back);
        Assert.Equal(parentData, back);
        Assert.Equal(Errno.None, dev.MigrateToSystem(a, pages).Error);
        child.Read(a, back);
        Assert.Equal(childData, back);
        parent.Read(a, back);
        Assert.Equal(parentData, back);
        for (ulong i = 0; i < pages; i++)
        {
            bool own = i % 3 == 0;
            Assert.Equal(own, new PagemapEntry(parent.PagemapEntry(a + i * PageSize)).Pfn != new PagemapEntry(child.PagemapEntry(a + i * PageSize)).Pfn);
        }
        m.CheckInvariants();
    }
}
