package main

// Argo CD's Lua health check as argoproj/argo-cd runs it (util/lua/lua.go,
// oslib_safe.go; gitops-engine/pkg/health/health.go), with the versions it
// pins: gopher-lua v1.1.2 and layeh.com/gopher-json. A script from argocd-cm
// runs sandboxed unless argocd-cm sets useOpenLibs, which ours does not.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	luajson "layeh.com/gopher-json"
)

func argoHealth(obj *unstructured.Unstructured, script string) (result, error) {
	// gitops-engine answers this itself; the script never sees such an object.
	if obj.GetDeletionTimestamp() != nil {
		return result{Status: "Progressing", Message: "Pending deletion"}, nil
	}
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	// The sandbox: package, base, table and a "safe" os; no string, math, io.
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name))
		if err != nil {
			return result{}, err
		}
	}
	l.PreloadModule(lua.OsLibName, safeOsLoader)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("actionParams", l.CreateTable(0, 0))
	l.SetGlobal("obj", decodeValue(l, obj.Object))
	fn, err := l.LoadString(script)
	if err != nil {
		return result{}, err
	}
	l.Push(fn)
	if err := l.PCall(0, lua.MultRet, nil); err != nil {
		return result{}, err
	}
	return healthOf(l.Get(-1))
}

// healthOf is ExecuteHealthLua's reading of the returned value.
func healthOf(v lua.LValue) (result, error) {
	switch v.Type() {
	case lua.LTNil:
		return result{}, nil
	case lua.LTTable:
	default:
		return result{}, fmt.Errorf("expect table output from Lua script, not %s", v.Type())
	}
	data, err := luajson.Encode(v)
	if err != nil {
		return result{}, err
	}
	var hs result
	if err := json.Unmarshal(data, &hs); err != nil {
		// Argo CD means an empty table (encoded as []) but takes any type
		// mismatch, e.g. a numeric message, for an empty health.
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return result{}, nil
		}
		return result{}, err
	}
	switch hs.Status {
	case "Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing":
		return hs, nil
	}
	return result{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
}

// decodeValue is Argo CD's JSON-to-Lua conversion: a null member or array
// item becomes nil, i.e. is absent (Append skips nil, so later items move
// up); empty arrays and objects both become an empty table.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}

// openSafeOs is Argo CD's OpenSafeOs, which registers under the table
// library's name: that module is loaded already, so it adds nothing and
// there is no global os. Only require("os") yields the safe one.
func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.TabLibName, safeOsFuncs()))
	return 1
}

func safeOsLoader(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), safeOsFuncs()))
	return 1
}

// safeOsFuncs are gopher-lua's os.time and os.date, which Argo CD's copies
// follow; nothing that exits, reads files or the environment.
func safeOsFuncs() map[string]lua.LGFunction {
	full := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer full.Close()
	lua.OpenOs(full)
	os := full.GetGlobal(lua.OsLibName).(*lua.LTable)
	funcs := map[string]lua.LGFunction{}
	for _, name := range []string{"time", "date"} {
		funcs[name] = os.RawGetString(name).(*lua.LFunction).GFunction
	}
	return funcs
}
