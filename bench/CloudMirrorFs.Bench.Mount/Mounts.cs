using System.Text;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>What /proc/self/mounts says, and the last-resort lazy unmounts.</summary>
internal static class Mounts
{
    /// <summary>The /proc/self/mounts line whose mount point is <paramref name="path"/>, or null.</summary>
    public static string? Find(string path)
    {
        string full = Path.GetFullPath(path).TrimEnd('/');
        return Entries().LastOrDefault(e => e.Target == full).Line;
    }

    public static bool IsMounted(string path) => Find(path) is not null;

    /// <summary>Mount points at or below <paramref name="root"/>.</summary>
    public static List<string> Under(string root)
    {
        string full = Path.GetFullPath(root).TrimEnd('/');
        return [.. Entries().Select(e => e.Target).Where(t => t == full || t.StartsWith(full + "/", StringComparison.Ordinal))];
    }

    /// <summary>The file system type and options of the mount holding <paramref name="path"/> (longest matching mount point).</summary>
    public static (string Type, string Options) FileSystemOf(string path)
    {
        string full = Path.GetFullPath(path).TrimEnd('/');
        var best = Entries()
            .Where(e => e.Target == "/" || full == e.Target || full.StartsWith(e.Target + "/", StringComparison.Ordinal))
            .MaxBy(e => e.Target.Length);
        return (best.Type ?? "unknown", best.Options ?? string.Empty);
    }

    /// <summary>Detaches a mount that its daemon did not take down: fusermount3 -u -z for FUSE, then umount -l.</summary>
    public static async Task DetachAsync(string path)
    {
        if (!IsMounted(path))
        {
            return;
        }
        Log.Info($"detaching {path} lazily");
        if (Shell.Which("fusermount3") is { } fusermount)
        {
            _ = await Shell.RunAsync(fusermount, ["-u", "-z", path], TimeSpan.FromSeconds(15), CancellationToken.None);
        }
        if (IsMounted(path))
        {
            _ = await Shell.RunAsync("umount", ["-l", path], TimeSpan.FromSeconds(15), CancellationToken.None);
        }
        if (IsMounted(path))
        {
            throw new BenchFailureException($"{path} is still mounted after fusermount3 -u -z and umount -l");
        }
    }

    private static IEnumerable<(string Line, string Target, string Type, string Options)> Entries()
    {
        foreach (string line in File.ReadLines("/proc/self/mounts"))
        {
            string[] f = line.Split(' ');
            if (f.Length > 3)
            {
                yield return (line, Unescape(f[1]), f[2], f[3]);
            }
        }
    }

    /// <summary>/proc/self/mounts writes space, tab, newline and backslash as \ooo octal escapes.</summary>
    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }
        var sb = new StringBuilder(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length)
            {
                sb.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                sb.Append(field[i]);
            }
        }
        return sb.ToString();
    }
}
