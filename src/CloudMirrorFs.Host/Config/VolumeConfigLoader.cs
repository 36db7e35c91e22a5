using System.Text.Json;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;

namespace CloudMirrorFs.Host.Config;

/// <summary>
/// Reads <c>cmfs.json</c> into <see cref="VolumeOptions"/> and validates all of it before anything touches the disk.
/// Every problem is one <see cref="ConfigException"/> naming the key. Keys: docs/configuration.md.
/// </summary>
public static class VolumeConfigLoader
{
    /// <summary>The config file looked for in the current folder.</summary>
    public const string DefaultFileName = "cmfs.json";

    private static readonly string[] TopKeys = ["volume", "mount", "queue", "facets"];
    private static readonly string[] VolumeKeys = ["name", "stateDir", "blockSize", "degradedTimeout", "caseInsensitiveNames"];
    private static readonly string[] MountKeys = ["path"];
    private static readonly string[] QueueKeys = ["path", "memoryLimit", "diskLimit", "segmentSize"];
    private static readonly string[] FacetCommonKeys =
        ["name", "role", "kind", "path", "overflow", "overflowTimeout", "bandwidthLimit", "resyncShare", "createIfMissing", "encryption", "compression", "retention"];
    private static readonly string[] S3Keys = ["bucket", "prefix", "region", "endpoint", "forcePathStyle", "accessKeyId", "secretAccessKey", "sessionToken"];
    private static readonly string[] AzureKeys = ["container", "prefix", "connectionString", "sasUrl", "accountUrl"];
    private static readonly string[] SecretKeys = ["accessKeyId", "secretAccessKey", "sessionToken", "connectionString", "sasUrl"];
    private static readonly string[] Kinds = ["directory", "folder", "s3", "azure"];

    /// <summary>
    /// Finds the volume: <paramref name="configPath"/> when given, else <c>cmfs.json</c> in <paramref name="workingDirectory"/>,
    /// else the embedded default.
    /// </summary>
    public static ResolvedVolume Resolve(string? configPath, string workingDirectory, bool needMount)
    {
        if (configPath is not null)
        {
            string full = Path.GetFullPath(configPath, workingDirectory);
            return new ResolvedVolume(Load(full, needMount), full, false);
        }
        string local = Path.Combine(workingDirectory, DefaultFileName);
        if (File.Exists(local))
        {
            return new ResolvedVolume(Load(local, needMount), local, false);
        }
        return new ResolvedVolume(EmbeddedDefault(workingDirectory), "embedded default", true);
    }

    /// <summary>
    /// The embedded default volume: state, a directory facet <c>local</c> and a <c>folder</c> object-store facet
    /// <c>remote</c> under <c>./.cmfs/</c>, mounted at <c>./drive</c>.
    /// </summary>
    public static VolumeOptions EmbeddedDefault(string workingDirectory)
    {
        string root = Path.Combine(Path.GetFullPath(workingDirectory), ".cmfs");
        return new VolumeOptions
        {
            Name = "default",
            StateDir = Path.Combine(root, "state"),
            MountPath = Path.Combine(Path.GetFullPath(workingDirectory), "drive"),
            Facets =
            [
                new FacetOptions { Name = "local", Role = FacetRole.Local, Kind = "directory", Path = Path.Combine(root, "local") },
                new FacetOptions { Name = "remote", Role = FacetRole.Remote, Kind = "folder", Path = Path.Combine(root, "remote") },
            ],
        };
    }

    /// <summary>Reads and validates a config file.</summary>
    public static VolumeOptions Load(string path, bool needMount)
    {
        if (!File.Exists(path))
        {
            throw new ConfigException("", Directory.Exists(path)
                ? $"config {path} is a folder; pass the cmfs.json file inside it with --config"
                : $"config file {path} not found; pass an existing file with --config, or run without --config in a folder with no cmfs.json to use the embedded default");
        }
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException("", $"cannot read config file {path}: {e.Message}");
        }
        return Parse(text, Path.GetDirectoryName(Path.GetFullPath(path))!, path, needMount);
    }

    /// <summary>Parses and validates config text; relative paths resolve against <paramref name="baseDirectory"/>.</summary>
    public static VolumeOptions Parse(string json, string baseDirectory, string sourceName, bool needMount)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new ConfigException("", $"{sourceName} is not valid JSON (line {e.LineNumber + 1}, column {e.BytePositionInLine + 1}): {FirstSentence(e.Message)}");
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ConfigException("", $"{sourceName} must hold a JSON object with volume, mount, queue and facets");
            }
            CheckKeys(root, "", TopKeys);

            JsonElement volume = Section(root, "volume", required: true);
            CheckKeys(volume, "volume", VolumeKeys);
            string name = OptionalString(volume, "volume", "name") ?? "volume";
            string stateDir = PathValue(RequiredString(volume, "volume", "stateDir"), baseDirectory);
            int blockSize = VolumeOptions.DefaultBlockSize;
            if (Size(volume, "volume", "blockSize") is { } bs)
            {
                if (bs < 4096 || bs > 64L << 20 || (bs & (bs - 1)) != 0)
                {
                    throw new ConfigException("volume.blockSize", "must be a power of two between 4KiB and 64MiB (the default, 256KiB, suits most volumes)");
                }
                blockSize = (int)bs;
            }
            TimeSpan degradedTimeout = Duration(volume, "volume", "degradedTimeout") ?? VolumeOptions.DefaultDegradedTimeout;
            if (degradedTimeout <= TimeSpan.Zero)
            {
                throw new ConfigException("volume.degradedTimeout", "must be longer than zero (\"60s\" is the default)");
            }

            bool caseInsensitiveNames = OperatingSystem.IsWindows();
            if (volume.TryGetProperty("caseInsensitiveNames", out JsonElement ci))
            {
                caseInsensitiveNames = ci.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw new ConfigException("volume.caseInsensitiveNames", "must be true or false (true on Windows, false elsewhere by default)"),
                };
            }

            string? mountPath = null;
            if (root.TryGetProperty("mount", out JsonElement mount))
            {
                ExpectObject(mount, "mount");
                CheckKeys(mount, "mount", MountKeys);
                // On Windows a bare drive letter ("X:") is a mount point of its own (WinFsp), not a folder to resolve.
                mountPath = OptionalString(mount, "mount", "path") is { } mp
                    ? OperatingSystem.IsWindows() && mp.Length == 2 && char.IsAsciiLetter(mp[0]) && mp[1] == ':' ? mp.ToUpperInvariant() : PathValue(mp, baseDirectory)
                    : null;
            }
            if (needMount && mountPath is null)
            {
                throw new ConfigException("mount.path", "is required to mount: add \"mount\": { \"path\": \"/mnt/NAME\" }");
            }

            var queue = new QueueOptions();
            if (root.TryGetProperty("queue", out JsonElement q))
            {
                ExpectObject(q, "queue");
                CheckKeys(q, "queue", QueueKeys);
                queue = new QueueOptions
                {
                    Path = OptionalString(q, "queue", "path") is { } qp ? PathValue(qp, baseDirectory) : null,
                    MemoryLimit = Size(q, "queue", "memoryLimit") ?? queue.MemoryLimit,
                    DiskLimit = Size(q, "queue", "diskLimit") ?? queue.DiskLimit,
                    SegmentSize = Size(q, "queue", "segmentSize") ?? queue.SegmentSize,
                };
                if (queue.SegmentSize < 1 << 20)
                {
                    throw new ConfigException("queue.segmentSize", "must be at least 1MiB");
                }
                if (queue.DiskLimit < queue.SegmentSize)
                {
                    throw new ConfigException("queue.diskLimit", $"must be at least queue.segmentSize ({queue.SegmentSize} bytes)");
                }
            }

            if (!root.TryGetProperty("facets", out JsonElement facetsEl))
            {
                throw new ConfigException("facets", "is required: list at least one facet with role \"local\"");
            }
            if (facetsEl.ValueKind != JsonValueKind.Array)
            {
                throw new ConfigException("facets", "must be a list of facet objects");
            }
            var facets = new List<FacetOptions>();
            int i = 0;
            foreach (JsonElement f in facetsEl.EnumerateArray())
            {
                facets.Add(ParseFacet(f, $"facets[{i++}]", baseDirectory));
            }
            var options = new VolumeOptions
            {
                Name = name,
                StateDir = stateDir,
                BlockSize = blockSize,
                DegradedTimeout = degradedTimeout,
                CaseInsensitiveNames = caseInsensitiveNames,
                MountPath = mountPath,
                Queue = queue,
                Facets = facets,
            };
            Validate(options);
            return options;
        }
    }

    /// <summary>Cross-key checks: names, roles, and folders that must not overlap.</summary>
    public static void Validate(VolumeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Facets.Count == 0)
        {
            throw new ConfigException("facets", "is empty: list at least one facet with role \"local\"");
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < options.Facets.Count; i++)
        {
            if (!names.Add(options.Facets[i].Name))
            {
                throw new ConfigException($"facets[{i}].name", $"'{options.Facets[i].Name}' is used by another facet; facet names must be unique");
            }
        }
        if (!options.Facets.Any(f => f.Role == FacetRole.Local))
        {
            throw new ConfigException("facets", "needs at least one facet with role \"local\" (a folder on this machine that every write reaches synchronously)");
        }
        var folders = new List<(string Key, string Path)>();
        for (int i = 0; i < options.Facets.Count; i++)
        {
            if (options.Facets[i].Path is { } p)
            {
                folders.Add(($"facets[{i}].path", p));
            }
        }
        for (int a = 0; a < folders.Count; a++)
        {
            for (int b = a + 1; b < folders.Count; b++)
            {
                if (Same(folders[a].Path, folders[b].Path))
                {
                    throw new ConfigException(folders[b].Key, $"{folders[b].Path} is also {folders[a].Key}: two facets cannot share a folder");
                }
                if (Inside(folders[a].Path, folders[b].Path) || Inside(folders[b].Path, folders[a].Path))
                {
                    throw new ConfigException(folders[b].Key, $"{folders[b].Path} and {folders[a].Key} ({folders[a].Path}) are nested: each facet needs a folder of its own");
                }
            }
        }
        foreach (var (key, path) in folders)
        {
            if (Same(path, options.StateDir) || Inside(path, options.StateDir) || Inside(options.StateDir, path))
            {
                throw new ConfigException(key, $"{path} overlaps volume.stateDir ({options.StateDir}): keep facet folders and the state folder apart");
            }
            if (Same(path, options.QueuePath) || Inside(path, options.QueuePath) || Inside(options.QueuePath, path))
            {
                throw new ConfigException(key, $"{path} overlaps the queue folder ({options.QueuePath}): keep facet folders and the queue apart");
            }
        }
        if (options.MountPath is { } mount)
        {
            foreach (var (key, path) in folders)
            {
                if (Same(mount, path) || Inside(mount, path) || Inside(path, mount))
                {
                    throw new ConfigException("mount.path", $"{mount} overlaps {key} ({path}): the drive must be mounted outside every facet folder");
                }
            }
            if (Same(mount, options.StateDir) || Inside(mount, options.StateDir) || Inside(options.StateDir, mount))
            {
                throw new ConfigException("mount.path", $"{mount} overlaps volume.stateDir ({options.StateDir})");
            }
        }
    }

    private static FacetOptions ParseFacet(JsonElement f, string key, string baseDirectory)
    {
        ExpectObject(f, key);
        string kind = RequiredString(f, key, "kind");
        if (!Kinds.Contains(kind))
        {
            throw new ConfigException($"{key}.kind", $"unknown kind '{kind}'; use directory, folder, s3 or azure");
        }
        string[] known = kind switch
        {
            "s3" => [.. FacetCommonKeys, .. S3Keys],
            "azure" => [.. FacetCommonKeys, .. AzureKeys],
            _ => FacetCommonKeys,
        };
        CheckKeys(f, key, known);
        string name = RequiredString(f, key, "name");
        if (name.Length == 0 || name.Length > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') || name[0] == '.')
        {
            throw new ConfigException($"{key}.name", $"'{name}' is not a valid facet name: use 1-64 letters, digits, '-', '_' or '.', not starting with '.'");
        }
        string roleText = RequiredString(f, key, "role");
        FacetRole role = roleText switch
        {
            "local" => FacetRole.Local,
            "remote" => FacetRole.Remote,
            _ => throw new ConfigException($"{key}.role", $"unknown role '{roleText}'; use local or remote"),
        };
        if (role == FacetRole.Local && kind != "directory")
        {
            throw new ConfigException($"{key}.role", $"a facet of kind '{kind}' can only be remote: local facets are plain folders (kind directory)");
        }
        string? path = OptionalString(f, key, "path") is { } p ? PathValue(p, baseDirectory) : null;
        if (path is null && kind is "directory" or "folder")
        {
            throw new ConfigException($"{key}.path", $"is required for kind '{kind}': the folder that holds this facet");
        }
        if (kind == "s3" && OptionalString(f, key, "bucket") is null)
        {
            throw new ConfigException($"{key}.bucket", "is required for kind s3");
        }
        if (kind == "azure" && OptionalString(f, key, "container") is null)
        {
            throw new ConfigException($"{key}.container", "is required for kind azure");
        }
        OverflowPolicy overflow = OptionalString(f, key, "overflow") switch
        {
            null or "unsync" => OverflowPolicy.Unsync,
            "block" => OverflowPolicy.Block,
            string other => throw new ConfigException($"{key}.overflow", $"unknown policy '{other}'; use unsync or block"),
        };
        TimeSpan timeout = Duration(f, key, "overflowTimeout") ?? TimeSpan.FromSeconds(30);
        long? bandwidth = Size(f, key, "bandwidthLimit");
        if (bandwidth is <= 0)
        {
            throw new ConfigException($"{key}.bandwidthLimit", "must be a positive number of bytes per second (\"20MiB\"), or left out for no limit");
        }
        double share = 0.25;
        if (f.TryGetProperty("resyncShare", out JsonElement shareElement))
        {
            if (shareElement.ValueKind != JsonValueKind.Number || !shareElement.TryGetDouble(out share) || share is < 0.05 or > 0.95)
            {
                throw new ConfigException($"{key}.resyncShare", "must be a fraction between 0.05 and 0.95 (the part of bandwidthLimit a resync keeps while writers are busy)");
            }
        }
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (JsonProperty prop in f.EnumerateObject())
        {
            if (prop.Name is "name" or "role" or "kind" or "path" or "overflow" or "overflowTimeout" or "bandwidthLimit" or "resyncShare")
            {
                continue;
            }
            string value = prop.Value.ValueKind switch
            {
                JsonValueKind.String => prop.Value.GetString()!,
                JsonValueKind.True => "true",
                JsonValueKind.False => "false",
                _ => prop.Value.GetRawText(),
            };
            if (SecretKeys.Contains(prop.Name) && !SecretReference.IsReference(value))
            {
                throw new ConfigException($"{key}.{prop.Name}", "secrets must be references: write \"env:VARIABLE\" or \"file:PATH\", never the secret itself");
            }
            if (SecretKeys.Contains(prop.Name) && value.StartsWith("file:", StringComparison.Ordinal))
            {
                value = "file:" + PathValue(value[5..], baseDirectory);
            }
            if (prop.Name == "encryption")
            {
                value = EncryptionSetting(prop.Value, $"{key}.encryption", baseDirectory);
            }
            if (prop.Name == "compression" && value is not ("none" or "brotli"))
            {
                throw new ConfigException($"{key}.compression", $"unknown compression '{value}'; use none or brotli");
            }
            if (prop.Name == "retention")
            {
                value = (Duration(f, key, "retention") ?? TimeSpan.Zero).ToString("c", System.Globalization.CultureInfo.InvariantCulture);
            }
            if (prop.Name == "createIfMissing" && prop.Value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                throw new ConfigException($"{key}.createIfMissing", "must be true or false");
            }
            settings[prop.Name] = value;
        }
        return new FacetOptions
        {
            Name = name,
            Role = role,
            Kind = kind,
            Path = path,
            Overflow = overflow,
            OverflowTimeout = timeout,
            BandwidthLimit = bandwidth,
            ResyncShare = share,
            Settings = settings,
        };
    }

    private static string EncryptionSetting(JsonElement e, string key, string baseDirectory)
    {
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("keyFile", out JsonElement f) && f.ValueKind == JsonValueKind.String && e.EnumerateObject().Count() == 1)
        {
            return JsonSerializer.Serialize(new { keyFile = PathValue(f.GetString()!, baseDirectory) });
        }
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("keyEnv", out JsonElement v) && v.ValueKind == JsonValueKind.String && e.EnumerateObject().Count() == 1)
        {
            return JsonSerializer.Serialize(new { keyEnv = v.GetString() });
        }
        throw new ConfigException(key, "must be { \"keyFile\": PATH } or { \"keyEnv\": NAME } (a 32-byte key: raw, 64 hex digits or base64)");
    }

    private static JsonElement Section(JsonElement root, string name, bool required)
    {
        if (!root.TryGetProperty(name, out JsonElement e))
        {
            if (required)
            {
                throw new ConfigException(name, $"is required: add \"{name}\": {{ ... }} (see docs/configuration.md)");
            }
            return default;
        }
        ExpectObject(e, name);
        return e;
    }

    private static void ExpectObject(JsonElement e, string key)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            throw new ConfigException(key, $"must be an object, not {Describe(e)}");
        }
    }

    private static void CheckKeys(JsonElement obj, string key, string[] known)
    {
        foreach (JsonProperty p in obj.EnumerateObject())
        {
            if (!known.Contains(p.Name))
            {
                string where = key.Length == 0 ? p.Name : $"{key}.{p.Name}";
                string? near = known.FirstOrDefault(k => string.Equals(k, p.Name, StringComparison.OrdinalIgnoreCase));
                throw new ConfigException(where, $"unknown key{(near is null ? "" : $" (did you mean '{near}'?)")}; known keys here: {string.Join(", ", known)}");
            }
        }
    }

    private static string RequiredString(JsonElement obj, string key, string name)
        => OptionalString(obj, key, name) ?? throw new ConfigException($"{key}.{name}", "is required");

    private static string? OptionalString(JsonElement obj, string key, string name)
    {
        if (!obj.TryGetProperty(name, out JsonElement e) || e.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (e.ValueKind != JsonValueKind.String)
        {
            throw new ConfigException($"{key}.{name}", $"must be a string, not {Describe(e)}");
        }
        string s = e.GetString()!;
        if (s.Length == 0)
        {
            throw new ConfigException($"{key}.{name}", "must not be empty");
        }
        return s;
    }

    private static long? Size(JsonElement obj, string key, string name)
    {
        if (!obj.TryGetProperty(name, out JsonElement e) || e.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        long? v = e.ValueKind switch
        {
            JsonValueKind.Number when e.TryGetInt64(out long n) && n >= 0 => n,
            JsonValueKind.String => Units.ParseSize(e.GetString()!),
            _ => null,
        };
        return v ?? throw new ConfigException($"{key}.{name}", $"'{e.GetRawText().Trim('"')}' is not a size; write a number of bytes or a string like \"256KiB\", \"64MiB\", \"20GiB\"");
    }

    private static TimeSpan? Duration(JsonElement obj, string key, string name)
    {
        if (!obj.TryGetProperty(name, out JsonElement e) || e.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        TimeSpan? v = e.ValueKind switch
        {
            JsonValueKind.Number when e.TryGetDouble(out double n) && n >= 0 => TimeSpan.FromSeconds(n),
            JsonValueKind.String => Units.ParseDuration(e.GetString()!),
            _ => null,
        };
        return v ?? throw new ConfigException($"{key}.{name}", $"'{e.GetRawText().Trim('"')}' is not a duration; write seconds or a string like \"30s\", \"5m\", \"250ms\"");
    }

    private static string PathValue(string value, string baseDirectory)
        => Path.TrimEndingDirectorySeparator(Path.GetFullPath(value, baseDirectory));

    private static bool Same(string a, string b) => string.Equals(Norm(a), Norm(b), OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);

    private static bool Inside(string inner, string outer)
        => Norm(inner).StartsWith(Norm(outer) + Path.DirectorySeparatorChar, OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);

    private static string Norm(string p) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(p));

    private static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Array => "a list",
        JsonValueKind.Object => "an object",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "true/false",
        JsonValueKind.String => "a string",
        _ => "null",
    };

    private static string FirstSentence(string message)
    {
        int i = message.IndexOf(". ", StringComparison.Ordinal);
        return i > 0 ? message[..(i + 1)] : message;
    }
}
