using System.Runtime.InteropServices;
using CloudMirrorFs.Mount.Linux;

namespace CloudMirrorFs.Mount.Tests.Linux;

/// <summary>
/// Pins our libfuse structures to the installed headers: a C program built against /usr/include/fuse3 prints every
/// offset and size, and each must equal the C# layout (a wrong slot in the operations table crashes the process).
/// </summary>
[TestClass]
public sealed class LinuxLayoutTests
{
    // (C expression, C# type, C# field or null for the size)
    private static readonly (string C, Type Type, string? Field)[] Checks =
    [
        ("sizeof(struct fuse_lowlevel_ops)", typeof(FuseLowLevelOps), null),
        .. Ops("init", "Init"), .. Ops("destroy", "Destroy"), .. Ops("lookup", "Lookup"), .. Ops("forget", "Forget"),
        .. Ops("getattr", "GetAttr"), .. Ops("setattr", "SetAttr"), .. Ops("readlink", "ReadLink"), .. Ops("mknod", "MkNod"),
        .. Ops("mkdir", "MkDir"), .. Ops("unlink", "Unlink"), .. Ops("rmdir", "RmDir"), .. Ops("symlink", "Symlink"),
        .. Ops("rename", "Rename"), .. Ops("link", "Link"), .. Ops("open", "Open"), .. Ops("read", "Read"), .. Ops("write", "Write"),
        .. Ops("flush", "Flush"), .. Ops("release", "Release"), .. Ops("fsync", "Fsync"), .. Ops("opendir", "OpenDir"),
        .. Ops("readdir", "ReadDir"), .. Ops("releasedir", "ReleaseDir"), .. Ops("fsyncdir", "FsyncDir"), .. Ops("statfs", "StatFs"),
        .. Ops("setxattr", "SetXattr"), .. Ops("getxattr", "GetXattr"), .. Ops("listxattr", "ListXattr"), .. Ops("removexattr", "RemoveXattr"),
        .. Ops("access", "Access"), .. Ops("create", "Create"), .. Ops("getlk", "GetLk"), .. Ops("setlk", "SetLk"), .. Ops("bmap", "Bmap"),
        .. Ops("ioctl", "Ioctl"), .. Ops("poll", "Poll"), .. Ops("write_buf", "WriteBuf"), .. Ops("retrieve_reply", "RetrieveReply"),
        .. Ops("forget_multi", "ForgetMulti"), .. Ops("flock", "Flock"), .. Ops("fallocate", "Fallocate"), .. Ops("readdirplus", "ReadDirPlus"),
        .. Ops("copy_file_range", "CopyFileRange"), .. Ops("lseek", "Lseek"),
        ("sizeof(struct fuse_file_info)", typeof(FuseFileInfo), null),
        ("offsetof(struct fuse_file_info, flags)", typeof(FuseFileInfo), "Flags"),
        ("offsetof(struct fuse_file_info, fh)", typeof(FuseFileInfo), "Fh"),
        ("offsetof(struct fuse_file_info, lock_owner)", typeof(FuseFileInfo), "LockOwner"),
        ("offsetof(struct fuse_file_info, poll_events)", typeof(FuseFileInfo), "PollEvents"),
        ("sizeof(struct stat)", typeof(LinuxStat), null),
        ("offsetof(struct stat, st_ino)", typeof(LinuxStat), "Ino"),
        ("offsetof(struct stat, st_nlink)", typeof(LinuxStat), "Nlink"),
        ("offsetof(struct stat, st_mode)", typeof(LinuxStat), "Mode"),
        ("offsetof(struct stat, st_uid)", typeof(LinuxStat), "Uid"),
        ("offsetof(struct stat, st_gid)", typeof(LinuxStat), "Gid"),
        ("offsetof(struct stat, st_rdev)", typeof(LinuxStat), "Rdev"),
        ("offsetof(struct stat, st_size)", typeof(LinuxStat), "Size"),
        ("offsetof(struct stat, st_blksize)", typeof(LinuxStat), "BlkSize"),
        ("offsetof(struct stat, st_blocks)", typeof(LinuxStat), "Blocks"),
        ("offsetof(struct stat, st_atim)", typeof(LinuxStat), "Atime"),
        ("offsetof(struct stat, st_mtim)", typeof(LinuxStat), "Mtime"),
        ("offsetof(struct stat, st_ctim)", typeof(LinuxStat), "Ctime"),
        ("sizeof(struct statvfs)", typeof(LinuxStatVfs), null),
        ("offsetof(struct statvfs, f_bsize)", typeof(LinuxStatVfs), "BlockSize"),
        ("offsetof(struct statvfs, f_frsize)", typeof(LinuxStatVfs), "FragmentSize"),
        ("offsetof(struct statvfs, f_blocks)", typeof(LinuxStatVfs), "Blocks"),
        ("offsetof(struct statvfs, f_bfree)", typeof(LinuxStatVfs), "BlocksFree"),
        ("offsetof(struct statvfs, f_bavail)", typeof(LinuxStatVfs), "BlocksAvailable"),
        ("offsetof(struct statvfs, f_files)", typeof(LinuxStatVfs), "Files"),
        ("offsetof(struct statvfs, f_ffree)", typeof(LinuxStatVfs), "FilesFree"),
        ("offsetof(struct statvfs, f_favail)", typeof(LinuxStatVfs), "FilesAvailable"),
        ("offsetof(struct statvfs, f_fsid)", typeof(LinuxStatVfs), "FsId"),
        ("offsetof(struct statvfs, f_flag)", typeof(LinuxStatVfs), "Flag"),
        ("offsetof(struct statvfs, f_namemax)", typeof(LinuxStatVfs), "NameMax"),
        ("sizeof(struct fuse_entry_param)", typeof(FuseEntryParam), null),
        ("offsetof(struct fuse_entry_param, ino)", typeof(FuseEntryParam), "Ino"),
        ("offsetof(struct fuse_entry_param, generation)", typeof(FuseEntryParam), "Generation"),
        ("offsetof(struct fuse_entry_param, attr)", typeof(FuseEntryParam), "Attr"),
        ("offsetof(struct fuse_entry_param, attr_timeout)", typeof(FuseEntryParam), "AttrTimeout"),
        ("offsetof(struct fuse_entry_param, entry_timeout)", typeof(FuseEntryParam), "EntryTimeout"),
        ("sizeof(struct fuse_conn_info)", typeof(FuseConnInfo), null),
        ("offsetof(struct fuse_conn_info, max_write)", typeof(FuseConnInfo), "MaxWrite"),
        ("offsetof(struct fuse_conn_info, max_readahead)", typeof(FuseConnInfo), "MaxReadahead"),
        ("offsetof(struct fuse_conn_info, capable)", typeof(FuseConnInfo), "Capable"),
        ("offsetof(struct fuse_conn_info, want)", typeof(FuseConnInfo), "Want"),
        ("offsetof(struct fuse_conn_info, time_gran)", typeof(FuseConnInfo), "TimeGran"),
        ("sizeof(struct fuse_args)", typeof(FuseArgs), null),
        ("offsetof(struct fuse_args, argv)", typeof(FuseArgs), "Argv"),
        ("offsetof(struct fuse_args, allocated)", typeof(FuseArgs), "Allocated"),
        ("sizeof(struct fuse_forget_data)", typeof(FuseForgetData), null),
        ("sizeof(struct fuse_ctx)", typeof(FuseCtx), null),
        ("offsetof(struct fuse_ctx, uid)", typeof(FuseCtx), "Uid"),
        ("offsetof(struct fuse_ctx, gid)", typeof(FuseCtx), "Gid"),
        ("offsetof(struct fuse_ctx, pid)", typeof(FuseCtx), "Pid"),
        ("offsetof(struct fuse_ctx, umask)", typeof(FuseCtx), "Umask"),
    ];

    private static (string, Type, string?)[] Ops(string c, string cs) => [($"offsetof(struct fuse_lowlevel_ops, {c})", typeof(FuseLowLevelOps), cs)];

    [TestMethod]
    public async Task Layouts_MatchTheInstalledLibfuseHeaders()
    {
        string gcc = Prerequisites.RequireProgram("gcc", "gcc");
        if (!File.Exists("/usr/include/fuse3/fuse_lowlevel.h"))
        {
            Assert.Fail("the libfuse3 headers are missing: run 'apt-get install -y libfuse3-dev'");
        }
        string dir = Path.Combine(Path.GetTempPath(), "cmfs-layout-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            var c = new System.Text.StringBuilder();
            c.AppendLine("#define FUSE_USE_VERSION 314");
            c.AppendLine("#include <fuse_lowlevel.h>\n#include <sys/stat.h>\n#include <sys/statvfs.h>\n#include <stddef.h>\n#include <stdio.h>\n#include <string.h>");
            c.AppendLine("int main(void) {");
            foreach ((string expr, _, _) in Checks)
            {
                c.AppendLine($"  printf(\"%zu\\n\", (size_t)({expr}));");
            }
            // The bit fields: keep_cache and cache_readdir, read back as the 32-bit word after flags.
            c.AppendLine("  struct fuse_file_info fi; memset(&fi, 0, sizeof fi); fi.keep_cache = 1; unsigned w; memcpy(&w, (char*)&fi + 4, 4); printf(\"%u\\n\", w);");
            c.AppendLine("  memset(&fi, 0, sizeof fi); fi.cache_readdir = 1; memcpy(&w, (char*)&fi + 4, 4); printf(\"%u\\n\", w);");
            c.AppendLine("  printf(\"%u %u %u %u %u\\n\", FUSE_CAP_ASYNC_READ, FUSE_CAP_ATOMIC_O_TRUNC, FUSE_CAP_WRITEBACK_CACHE, FUSE_CAP_PARALLEL_DIROPS, FUSE_CAP_HANDLE_KILLPRIV);");
            c.AppendLine("  return 0; }");
            File.WriteAllText(Path.Combine(dir, "layout.c"), c.ToString());
            await Prerequisites.RunAsync(gcc, dir, TimeSpan.FromSeconds(60), "-I/usr/include/fuse3", "-o", "layout", "layout.c");
            string[] lines = (await Prerequisites.RunAsync(Path.Combine(dir, "layout"), dir, TimeSpan.FromSeconds(10))).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var wrong = new List<string>();
            for (int i = 0; i < Checks.Length; i++)
            {
                (string expr, Type type, string? field) = Checks[i];
                long ours = field is null ? Marshal.SizeOf(type) : Marshal.OffsetOf(type, field).ToInt64();
                if (ours != long.Parse(lines[i], System.Globalization.CultureInfo.InvariantCulture))
                {
                    wrong.Add($"{expr}: C says {lines[i]}, ours {ours}");
                }
            }
            Assert.AreEqual(0, wrong.Count, string.Join("\n", wrong));
            Assert.AreEqual(FuseFileInfo.KeepCacheBit.ToString(System.Globalization.CultureInfo.InvariantCulture), lines[Checks.Length], "keep_cache bit");
            Assert.AreEqual(FuseFileInfo.CacheReaddirBit.ToString(System.Globalization.CultureInfo.InvariantCulture), lines[Checks.Length + 1], "cache_readdir bit");
            Assert.AreEqual($"{FuseConnInfo.CapAsyncRead} {FuseConnInfo.CapAtomicOTrunc} {FuseConnInfo.CapWritebackCache} {FuseConnInfo.CapParallelDirops} {FuseConnInfo.CapHandleKillpriv}",
                lines[Checks.Length + 2], "capability bits");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
