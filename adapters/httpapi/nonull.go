package httpapi

import (
	"reflect"
	"sync"

	"github.com/danielgtaylor/huma/v2"
)

// noNullArrays is a response transformer: nil slices and maps anywhere in a
// body become empty ones, so that a list is always sent as [] and an object
// as {}, as the OpenAPI document promises. The handler's value is copied,
// never changed in place.
func noNullArrays(_ huma.Context, _ string, v any) (any, error) {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || !mayHoldNil(rv.Type()) {
		return v, nil
	}
	return fillNil(rv).Interface(), nil
}

// fillNil returns a copy of v with nil slices and maps made empty.
func fillNil(v reflect.Value) reflect.Value {
	if !mayHoldNil(v.Type()) {
		return v
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(fillNil(v.Elem()))
		return out
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(fillNil(v.Elem()))
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := range v.NumField() {
			if f := out.Field(i); f.CanSet() {
				f.Set(fillNil(v.Field(i)))
			}
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return reflect.MakeSlice(v.Type(), 0, 0)
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(fillNil(v.Index(i)))
		}
		return out
	case reflect.Array:
		out := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			out.Index(i).Set(fillNil(v.Index(i)))
		}
		return out
	case reflect.Map:
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), fillNil(it.Value()))
		}
		return out
	}
	return v
}

var holdsNil sync.Map // reflect.Type -> bool

// mayHoldNil reports whether a value of type t can contain a nil slice or
// map that JSON would encode as null. Byte slices (raw JSON, base64) are
// left alone: their encodings differ.
func mayHoldNil(t reflect.Type) bool {
	if v, ok := holdsNil.Load(t); ok {
		return v.(bool)
	}
	holdsNil.Store(t, false) // breaks cycles of recursive types
	r := computeHoldsNil(t)
	holdsNil.Store(t, r)
	return r
}

func computeHoldsNil(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Uint8
	case reflect.Map, reflect.Interface:
		return true
	case reflect.Pointer, reflect.Array:
		return mayHoldNil(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && mayHoldNil(f.Type) {
				return true
			}
		}
	}
	return false
}
