using System.Diagnostics;
using Arch = HmmSim.Kernel.Arch;

namespace HmmSim.Cli.Workloads;

/// <summary>`hmmsim bench p2p`: unit 0 owns a buffer in its device memory; unit 1 reads it once with
/// ALLOW_P2P (through unit 0's BAR) and once without (the CPU round trip: migrate to RAM, then read).</summary>
public static class P2pWorkload
{
    public sealed record Row(string Mode, PciTopology Topology, long PagesMigratedToRam, long BytesThroughRam, long BytesOverAlias, double Ms, bool DataOk);

    public static List<Row> Run(DevicePrivateDesign design, ulong bytes)
    {
        var rows = new List<Row>();
        foreach (var topology in new[] { PciTopology.CommonSwitch, PciTopology.SeparateRootPorts })
        {
            foreach (bool p2p in new[] { false, true })
            {
                using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, PciTopology = topology, CheckInvariants = false, HugetlbPages = 0 });
                var p = m.CreateProcess();
                using var owner = p.OpenDmirror(0);
                using var importer = p.OpenDmirror(1);
                if (p2p)
                    importer.SetFlags(DmirrorFlags.AllowP2P);
                ulong npages = bytes >> Arch.PageShift;
                if (p.Mmap(0, bytes, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a) != Errno.None)
                    throw new InvalidOperationException("mmap failed");
                var data = new byte[bytes];
                for (int i = 0; i < data.Length; i += (int)Arch.PageSize)
                    data[i] = (byte)(i >> Arch.PageShift);
                p.Write(a, data);
                var buf = new byte[bytes];
                if (owner.MigrateToDevice(a, npages, buf).Error != Errno.None)
                    throw new InvalidOperationException("migrate to device failed");
                long before = m.VmStat["device_migrate_to_ram"];
                var sw = Stopwatch.StartNew();
                var r = importer.Read(a, npages, buf);
                sw.Stop();
                long migrated = m.VmStat["device_migrate_to_ram"] - before;
                long alias = m.VmStat["p2p_alias_pages"];
                // The round trip copies each page device->RAM, then the importer DMAs it out of RAM.
                long throughRam = migrated * (long)Arch.PageSize * 2;
                rows.Add(new Row(p2p ? "ALLOW_P2P" : "migrate to RAM", topology, migrated, throughRam, alias * (long)Arch.PageSize,
                    sw.Elapsed.TotalMilliseconds, r.Error == Errno.None && buf.AsSpan().SequenceEqual(data)));
            }
        }
        return rows;
    }
}
